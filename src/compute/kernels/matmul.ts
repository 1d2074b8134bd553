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
import { type KernelArgs, type KernelBackend, runKernel } from './kernel-call.js';

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
 */
export function explicitTransposeMatMul(
  original: KernelConfig,
  transpose: KernelFunc,
): KernelConfig {
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const attrs = args.attrs as NamedAttrMap & { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc(args) as TensorInfo;
    const backend = args.backend as KernelBackend;
    const inputs = { ...args.inputs } as Record<string, TensorInfo>;
    const temps: TensorInfo[] = [];
    for (const [name, flag] of [
      ['a', attrs.transposeA],
      ['b', attrs.transposeB],
    ] as const) {
      const t = inputs[name];
      if (!flag || t === undefined) continue;
      const tt = runKernel(transpose, backend, { x: t }, { perm: lastTwoSwapped(t.shape.length) });
      temps.push(tt);
      inputs[name] = tt;
    }
    try {
      return original.kernelFunc({
        inputs,
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      }) as TensorInfo;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  return {
    kernelName: original.kernelName,
    backendName: original.backendName,
    ...(original.setupFunc ? { setupFunc: original.setupFunc } : {}),
    ...(original.disposeFunc ? { disposeFunc: original.disposeFunc } : {}),
    kernelFunc: kernelFunc as unknown as KernelFunc,
  };
}
