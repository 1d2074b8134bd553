/**
 * BatchMatMul and _FusedMatMul for the wasm backend on ./gemm.ts: products of float32 matrices
 * computed on the operands as they lie in the backend's memory, in any of the four transpose modes,
 * without XNNPACK's per-call packing of the right-hand operand (see gemm.ts for why). A transposed
 * operand costs nothing when gemm can read it by strides; when neither operand has unit stride
 * along its free axis (C = A·Bᵀ with A untransposed: a dense layer's input gradient dy·Wᵀ), the
 * smaller of the two is transposed first. Fused bias (one value per column) and ReLU run in the
 * product's store. Anything else (other dtypes or activations, broadcast biases, prelu) goes to the
 * kernel registered before.
 *
 *   tf.registerKernel(gemmMatMulKernel(tf.getKernel('BatchMatMul', 'wasm')!, gemmKernels(backend)!));
 */
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { type GemmKernels, RELU } from './gemm.js';
import { type KernelArgs, replacing } from './kernel-call.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
  activation?: string;
}

const size = (shape: readonly number[]) => shape.reduce((a, d) => a * d, 1);

export function gemmMatMulKernel(original: KernelConfig, k: GemmKernels): KernelConfig {
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    const attrs = (args.attrs ?? {}) as MatMulAttrs;
    const ta = attrs.transposeA === true;
    const tb = attrs.transposeB === true;
    const relu = attrs.activation === 'relu';
    const plan = a && b ? shapes(a, b, ta, tb) : undefined;
    const supported =
      plan !== undefined &&
      a!.dtype === 'float32' &&
      b!.dtype === 'float32' &&
      (attrs.activation === undefined || attrs.activation === 'linear' || relu) &&
      preluActivationWeights === undefined &&
      (bias === undefined ||
        (bias.dtype === 'float32' && size(bias.shape) === plan.N && bias.shape.length <= 1));
    if (!supported) return original.kernelFunc(args) as TensorInfo;
    const { M, N, K, batch, batchA, batchB, outShape } = plan;
    const backend = args.backend as HeapBackend;
    const out = backend.makeOutput(outShape, 'float32');
    // C = A·Bᵀ with A untransposed: transpose A (C is then written transposed) or B, whichever is
    // smaller; B whenever a bias or ReLU must run along C's columns in the store (also for Aᵀ·Bᵀ,
    // which gemm otherwise computes as Cᵀ = B·A without any copy).
    const fusedEpilogue = bias !== undefined || relu;
    const swapA = tb && !ta && !fusedEpilogue && M <= N;
    const swapB = tb && !swapA && (!ta || fusedEpilogue);
    const scratch =
      swapA || swapB ? backend.makeOutput(swapA ? [K, M] : [K, N], 'float32') : undefined;
    try {
      const at = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
      const [aBase, bBase, cBase] = [at(a!), at(b!), at(out)];
      const biasAt = bias ? at(bias) : 0;
      for (let g = 0; g < batch; g++) {
        let ao = aBase + (batchA === 1 ? 0 : g) * M * K * 4;
        let bo = bBase + (batchB === 1 ? 0 : g) * K * N * 4;
        const co = cBase + g * M * N * 4;
        let aT = ta;
        let bT = tb;
        if (scratch) {
          const so = at(scratch);
          if (swapA) {
            k.transpose(so, ao, M, K); // A [M,K] -> Aᵀ [K,M]
            ao = so;
            aT = true;
          } else {
            k.transpose(so, bo, N, K); // Bᵀ stored [N,K] -> B [K,N]
            bo = so;
            bT = false;
          }
        }
        if (!bT) {
          // C = op(A)·B, B row-major [K,N].
          const [sam, sak] = aT ? [4, 4 * M] : [4 * K, 4];
          k.gemm(co, ao, bo, biasAt, M, N, K, sam, sak, 4 * N, 4 * N, 4, relu ? RELU : 0);
        } else {
          // Both transposed (A stored [K,M], B stored [N,K]): Cᵀ = B·A, with B read by rows and A
          // by its unit-stride rows, written into C by transposed strides.
          k.gemm(co, bo, ao, 0, N, M, K, 4 * K, 4, 4 * M, 4, 4 * N, 0);
        }
      }
    } finally {
      if (scratch) backend.disposeData(scratch.dataId);
    }
    return out;
  };
  return replacing(original, kernelFunc);
}

/** Dimensions of the product, or undefined for batch shapes this kernel does not broadcast. */
function shapes(a: TensorInfo, b: TensorInfo, ta: boolean, tb: boolean) {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const M = a.shape[ta ? ra - 1 : ra - 2]!;
  const K = a.shape[ta ? ra - 2 : ra - 1]!;
  const kb = b.shape[tb ? rb - 1 : rb - 2]!;
  const N = b.shape[tb ? rb - 2 : rb - 1]!;
  if (K !== kb) return undefined;
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const batchA = size(ba);
  const batchB = size(bb);
  // Equal batch shapes, or one side's batch a single matrix (broadcast over the other's).
  let outBatch: number[];
  if (tf.util.arraysEqual(ba, bb)) outBatch = ba;
  else if (batchA === 1 && ba.length <= bb.length) outBatch = bb;
  else if (batchB === 1 && bb.length <= ba.length) outBatch = ba;
  else return undefined;
  return { M, N, K, batch: size(outBatch), batchA, batchB, outShape: [...outBatch, M, N] };
}
