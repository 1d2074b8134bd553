/**
 * The wasm kernels behind ../layers.ts: a dense layer's forward product with its bias and ReLU in
 * the store, its three gradients, a stride-1 conv with its bias and ReLU in the store (the
 * `conv2d-gemm` patch's im2col and GEMM), a ReLU's gradient mask, and the softmax cross-entropy loss
 * and its gradient, each one call on the backend's heap. The products are ./gemm.ts's (the same sums in the same order as the
 * `matmul-simd-gemm` patch runs for tfjs's BatchMatMul); the ReLU mask and the bias sums are
 * ./simd.ts loops, the loss a short loop over the logits. Registered by wasm-patches.ts (patch
 * `fused-layers`) only where the SIMD modules instantiate.
 *
 *   for (const k of layerKernels('wasm', gemm, simd)) tf.registerKernel(k);
 *
 * Roundings against tfjs's kernels: the products and the bias add are the same float32 operations;
 * the bias gradient sums in float64 (as the `sum-leading-axes` patch); the loss and its gradient are
 * computed in float64 and rounded once (tfjs rounds each of its ~10 steps to float32).
 */
import * as tf from '@tensorflow/tfjs';
import {
  CONV_RELU,
  DENSE,
  DENSE_GRAD_B,
  DENSE_GRAD_W,
  DENSE_GRAD_X,
  DENSE_RELU,
  RELU_GRAD,
  SOFTMAX_XENT,
  SOFTMAX_XENT_GRAD,
} from '../layers.js';
import { gemmGeometry } from './conv2d-backprop.js';
import { convByGemm } from './conv2d-forward.js';
import { type GemmKernels, RELU } from './gemm.js';
import type { KernelArgs } from './kernel-call.js';
import type { SimdKernels } from './simd.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  disposeData(dataId: object, force?: boolean): boolean;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

type Inputs = Record<string, tf.TensorInfo | undefined>;

const size = (t: tf.TensorInfo) => t.shape.reduce((a, d) => a * d, 1);

function kernel(
  kernelName: string,
  backendName: string,
  f: (b: HeapBackend, inputs: Inputs, attrs: tf.NamedAttrMap) => tf.TensorInfo,
): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs) =>
    f(args.backend as HeapBackend, args.inputs as Inputs, args.attrs ?? {});
  return { kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

export function layerKernels(
  backendName: string,
  k: GemmKernels,
  simd: SimdKernels,
): tf.KernelConfig[] {
  const at = (b: HeapBackend, t: tf.TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const f32 = (b: HeapBackend, t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  /**
   * Runs `f` on dy masked by the ReLU (0 where y is not positive: tfjs's dy·step(x), as y > 0
   * exactly where x > 0) in a scratch tensor, or on dy itself without a ReLU (no y).
   */
  const masked = <T>(
    b: HeapBackend,
    dy: tf.TensorInfo,
    y: tf.TensorInfo | undefined,
    f: (g: tf.TensorInfo) => T,
  ): T => {
    if (!y) return f(dy);
    const s = b.makeOutput(dy.shape, 'float32');
    try {
      simd.reluMask(at(b, s), at(b, dy), at(b, y), size(dy));
      return f(s);
    } finally {
      b.disposeData(s.dataId);
    }
  };
  const dense =
    (relu: boolean) =>
    (b: HeapBackend, { x, w, b: bias }: Inputs) => {
      const [M, K] = x!.shape as [number, number];
      const N = w!.shape[1]!;
      const out = b.makeOutput([M, N], 'float32');
      const flags = relu ? RELU : 0;
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
        flags,
      );
      return out;
    };
  return [
    kernel(DENSE, backendName, dense(false)),
    kernel(DENSE_RELU, backendName, dense(true)),
    kernel(DENSE_GRAD_X, backendName, (b, { dy, w, y }) => {
      // dx [M,K] = dyM·Wᵀ, computed as dxᵀ = W·dyMᵀ: gemm streams W [K,N] by rows and reads dyMᵀ
      // [N,M] (a batch's worth, transposed first) by unit-stride rows; dx is stored by transposed
      // strides. (The same product as the matmul-simd-gemm patch runs for tfjs's dy·Wᵀ.)
      const [M, N] = dy!.shape as [number, number];
      const K = w!.shape[0]!;
      const out = b.makeOutput([M, K], 'float32');
      const t = b.makeOutput([N, M], 'float32');
      try {
        masked(b, dy!, y, (g) => k.transpose(at(b, t), at(b, g), M, N));
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
      masked(b, dy!, y, (g) =>
        k.gemm(at(b, out), at(b, x!), at(b, g), 0, K, N, M, 4, 4 * K, 4 * N, 4 * N, 4, 0),
      );
      return out;
    }),
    kernel(DENSE_GRAD_B, backendName, (b, { dy, y }) => {
      // Σ over the rows of dyM, in float64 (the sum-leading-axes patch's sums).
      const [M, N] = dy!.shape as [number, number];
      const out = b.makeOutput([N], 'float32');
      const acc = b.makeOutput([2 * N], 'float32'); // N float64s
      try {
        f32(b, acc).fill(0);
        masked(b, dy!, y, (g) => simd.sumRowsF64(at(b, acc), at(b, g), M, N));
        const a = f32(b, acc);
        f32(b, out).set(new Float64Array(a.buffer, a.byteOffset, N));
      } finally {
        b.disposeData(acc.dataId);
      }
      return out;
    }),
    kernel(CONV_RELU, backendName, (b, { x, w, b: bias }, attrs) => {
      const info = tf.backend_util.computeConv2DInfo(
        x!.shape as [number, number, number, number],
        w!.shape as [number, number, number, number],
        1,
        1,
        attrs['pad'] as 'same' | 'valid',
      );
      // conv2dRelu checked the geometry before choosing this kernel.
      const geo = gemmGeometry(info)!;
      return convByGemm(k, b, x!, w!, info.outShape, geo, bias!, RELU);
    }),
    kernel(RELU_GRAD, backendName, (b, { dy, y }) => {
      const out = b.makeOutput(dy!.shape, 'float32');
      simd.reluMask(at(b, out), at(b, dy!), at(b, y!), size(dy!));
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
