/**
 * The wasm kernels behind ../layers.ts: a dense layer's forward product with its bias and ReLU in
 * the store, its three gradients, and the softmax cross-entropy loss and its gradient, each one call
 * on the backend's heap. The products are ./gemm.ts's (the same sums in the same order as the
 * `matmul-simd-gemm` patch runs for tfjs's BatchMatMul); the ReLU mask, the bias sums and the loss
 * are short loops over a batch's worth of values. Registered by wasm-patches.ts (patch
 * `fused-layers`) only where the SIMD GEMM instantiates.
 *
 *   for (const k of layerKernels('wasm', gemm)) tf.registerKernel(k);
 *
 * Roundings against tfjs's kernels: the products and the bias add are the same float32 operations;
 * the bias gradient sums in float64 (as the `sum-leading-axes` patch); the loss and its gradient are
 * computed in float64 and rounded once (tfjs rounds each of its ~10 steps to float32).
 */
import type * as tf from '@tensorflow/tfjs';
import {
  DENSE,
  DENSE_GRAD_B,
  DENSE_GRAD_W,
  DENSE_GRAD_X,
  DENSE_RELU,
  SOFTMAX_XENT,
  SOFTMAX_XENT_GRAD,
} from '../layers.js';
import { type GemmKernels, RELU } from './gemm.js';
import type { KernelArgs } from './kernel-call.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  disposeData(dataId: object, force?: boolean): boolean;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

type Inputs = Record<string, tf.TensorInfo | undefined>;

function kernel(
  kernelName: string,
  backendName: string,
  f: (b: HeapBackend, inputs: Inputs) => tf.TensorInfo,
): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs) => f(args.backend as HeapBackend, args.inputs as Inputs);
  return { kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

export function layerKernels(backendName: string, k: GemmKernels): tf.KernelConfig[] {
  const at = (b: HeapBackend, t: tf.TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const f32 = (b: HeapBackend, t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  /**
   * dy masked by the ReLU (0 where y is not positive: tfjs's dy·step(x), as y > 0 exactly where
   * x > 0), written into `out`, transposed to [N, M] if asked. Views are taken here, after every
   * allocation of the calling kernel (allocating can grow the memory and detach older views).
   */
  const mask = (
    b: HeapBackend,
    out: tf.TensorInfo,
    dy: tf.TensorInfo,
    y: tf.TensorInfo | undefined,
    transposed: boolean,
  ) => {
    const [M, N] = dy.shape as [number, number];
    const o = f32(b, out);
    const d = f32(b, dy);
    const yv = y ? f32(b, y) : undefined;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const i = m * N + n;
        o[transposed ? n * M + m : i] = yv && !(yv[i]! > 0) ? 0 : d[i]!;
      }
    }
  };
  const dense =
    (relu: boolean) =>
    (b: HeapBackend, { x, w, b: bias }: Inputs) => {
      const [M, K] = x!.shape as [number, number];
      const N = w!.shape[1]!;
      const out = b.makeOutput([M, N], 'float32');
      k.gemm(
        at(b, out),
        at(b, x!),
        at(b, w!),
        at(b, bias!),
        M,
        N,
        K,
        4 * K,
        4,
        4 * N,
        4 * N,
        4,
        relu ? RELU : 0,
      );
      return out;
    };
  return [
    kernel(DENSE, backendName, dense(false)),
    kernel(DENSE_RELU, backendName, dense(true)),
    kernel(DENSE_GRAD_X, backendName, (b, { dy, w, y }) => {
      // dx [M,K] = dyM·Wᵀ, computed as dxᵀ = W·dyMᵀ: gemm streams W [K,N] by rows and reads dyMᵀ
      // [N,M] (a batch's worth, transposed while masking) by unit-stride rows; dx is stored by
      // transposed strides.
      const [M, N] = dy!.shape as [number, number];
      const K = w!.shape[0]!;
      const out = b.makeOutput([M, K], 'float32');
      const t = b.makeOutput([N, M], 'float32');
      try {
        mask(b, t, dy!, y, true);
        k.gemm(at(b, out), at(b, w!), at(b, t), 0, K, M, N, 4 * N, 4, 4 * M, 4, 4 * K, 0);
      } finally {
        b.disposeData(t.dataId);
      }
      return out;
    }),
    kernel(DENSE_GRAD_W, backendName, (b, { dy, x, y }) => {
      // dW [K,N] = xᵀ·dyM: x read by transposed strides, dyM by rows.
      const [M, N] = dy!.shape as [number, number];
      const K = x!.shape[1]!;
      const out = b.makeOutput([K, N], 'float32');
      const s = y ? b.makeOutput([M, N], 'float32') : undefined;
      try {
        if (s) mask(b, s, dy!, y, false);
        const g = at(b, s ?? dy!);
        k.gemm(at(b, out), at(b, x!), g, 0, K, N, M, 4, 4 * K, 4 * N, 4 * N, 4, 0);
      } finally {
        if (s) b.disposeData(s.dataId);
      }
      return out;
    }),
    kernel(DENSE_GRAD_B, backendName, (b, { dy, y }) => {
      const [M, N] = dy!.shape as [number, number];
      const out = b.makeOutput([N], 'float32');
      const d = f32(b, dy!);
      const yv = y ? f32(b, y) : undefined;
      const acc = new Float64Array(N);
      for (let m = 0, i = 0; m < M; m++) {
        for (let n = 0; n < N; n++, i++) if (!yv || yv[i]! > 0) acc[n]! += d[i]!;
      }
      f32(b, out).set(acc);
      return out;
    }),
    kernel(SOFTMAX_XENT, backendName, (b, { labels, logits }) => {
      const out = b.makeOutput([], 'float32');
      const [B, C] = logits!.shape as [number, number];
      const z = f32(b, logits!);
      const y = f32(b, labels!);
      let total = 0;
      for (let r = 0; r < B; r++) {
        const lse = logSumExp(z, r * C, C);
        for (let j = r * C; j < (r + 1) * C; j++) total += y[j]! * (lse - z[j]!);
      }
      f32(b, out)[0] = total / B;
      return out;
    }),
    kernel(SOFTMAX_XENT_GRAD, backendName, (b, { dy, labels, logits }) => {
      // (softmax(z) - y)·dy/B, tfjs's gradient of its softmax cross-entropy (which assumes rows
      // of y sum to 1, as one-hot labels do).
      const [B, C] = logits!.shape as [number, number];
      const out = b.makeOutput([B, C], 'float32');
      const z = f32(b, logits!);
      const y = f32(b, labels!);
      const o = f32(b, out);
      const g = f32(b, dy!)[0]! / B;
      for (let r = 0; r < B; r++) {
        const lse = logSumExp(z, r * C, C);
        for (let j = r * C; j < (r + 1) * C; j++) o[j] = (Math.exp(z[j]! - lse) - y[j]!) * g;
      }
      return out;
    }),
  ];
}

/** log Σ exp(z[from..from+n)), shifted by the maximum (in float64). */
function logSumExp(z: Float32Array, from: number, n: number): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let j = from; j < from + n; j++) m = Math.max(m, z[j]!);
  let s = 0;
  for (let j = from; j < from + n; j++) s += Math.exp(z[j]! - m);
  return m + Math.log(s);
}
