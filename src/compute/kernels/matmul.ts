/**
 * MatMul with explicit transposes for the wasm backend. The wasm BatchMatMul and _FusedMatMul
 * kernels accept transposeA/transposeB, but their transposed paths are 10-40x slower than the plain
 * one (XNNPACK is only fast for a row-major A and B). Every backward pass of a dense layer asks for
 * a transposed product (dA = dy·Bᵀ, dB = Aᵀ·dy), so this wrapper transposes the operand with the
 * (fast, memory-bound) Transpose kernel and calls the original kernel untransposed.
 *
 *   const patched = explicitTransposeMatMul(tf.getKernel('BatchMatMul', 'wasm')!, transposeKernel);
 *   tf.unregisterKernel('BatchMatMul', 'wasm'); tf.registerKernel(patched);
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { type KernelArgs, type KernelBackend, replacing, runKernel } from './kernel-call.js';

/** Swaps the last two axes of a rank >= 2 tensor: the permutation for a matrix transpose. */
function lastTwoSwapped(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

/**
 * Wraps a BatchMatMul or _FusedMatMul kernel config so that transposed operands are materialized
 * first. Inputs and attrs other than transposeA/transposeB pass through unchanged (bias, fused
 * activation, prelu weights), so the same wrapper serves both kernels.
 *
 * With `swap` (BatchMatMul only: no bias or activation to apply after the product), a product
 * with transposeB may instead be computed as C = A·Bᵀ = (B·Aᵀ)ᵀ. XNNPACK packs the right-hand
 * operand on every call whose data is new (a weight after each optimizer step is), at a cost
 * comparable to a transpose, so the cheaper form is picked per call by the element counts it
 * moves: transposing and packing B (2·K·N) versus transposing and packing A plus transposing the
 * result (2·K·M + M·N). In a dense layer's backward pass dX = dy·Wᵀ has M = batch, far below
 * N = fan-in, and the swapped form avoids touching the whole weight matrix twice.
 */
export function explicitTransposeMatMul(
  original: KernelConfig,
  transpose: KernelFunc,
  opts: { swap?: boolean } = {},
): KernelConfig {
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const attrs = args.attrs as NamedAttrMap & { transposeA?: boolean; transposeB?: boolean };
    const ta = attrs.transposeA === true;
    const tb = attrs.transposeB === true;
    if (!ta && !tb) return original.kernelFunc(args) as TensorInfo;
    const backend = args.backend as KernelBackend;
    const temps: TensorInfo[] = [];
    const t = (x: TensorInfo): TensorInfo => {
      const out = runKernel(transpose, backend, { x }, { perm: lastTwoSwapped(x.shape.length) });
      temps.push(out);
      return out;
    };
    const plain = (a: TensorInfo, b: TensorInfo): TensorInfo => {
      const out = original.kernelFunc({
        inputs: { ...args.inputs, a, b },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      }) as TensorInfo;
      return out;
    };
    try {
      const a = args.inputs['a']!;
      const b = args.inputs['b']!;
      if (opts.swap && tb && shouldSwap(a, b, ta)) {
        // C = op(A)·Bᵀ = (B·op(A)ᵀ)ᵀ; op(A)ᵀ is A itself when transposeA, else Aᵀ.
        const ct = plain(b, ta ? a : t(a));
        temps.push(ct);
        const c = runKernel(
          transpose,
          backend,
          { x: ct },
          { perm: lastTwoSwapped(ct.shape.length) },
        );
        return c;
      }
      return plain(ta ? t(a) : a, tb ? t(b) : b);
    } finally {
      for (const x of temps) backend.disposeData(x.dataId);
    }
  };
  return replacing(original, kernelFunc);
}

/** Whether (B·op(A)ᵀ)ᵀ moves fewer elements than op(A)·Bᵀ with B transposed (see above). */
function shouldSwap(a: TensorInfo, b: TensorInfo, transposeA: boolean): boolean {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = a.shape[transposeA ? ra - 1 : ra - 2]!;
  const k = a.shape[transposeA ? ra - 2 : ra - 1]!;
  const n = b.shape[rb - 2]!;
  // Batch dims broadcast the same way in both forms, so they scale both costs alike.
  const direct = 2 * k * n + (transposeA ? k * m : 0);
  // Packing the new right operand counts once, each transpose once.
  const swapped = (transposeA ? k * m : 2 * k * m) + m * n;
  return swapped < direct;
}
