/**
 * Calling one backend kernel from inside another. Kernel functions receive raw `TensorInfo`s (no
 * tape, no ref counting), so a composite kernel calls the backend's own kernel functions directly
 * and frees its intermediates with `backend.disposeData`, exactly as tfjs's backends do internally.
 *
 *   const t = runKernel(transposeFn, backend, { x }, { perm: [1, 0] });
 *   try { ... } finally { backend.disposeData(t.dataId); }
 */
import type { DataId, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

/** The part of a backend a composite kernel uses. */
export interface KernelBackend {
  disposeData(dataId: DataId, force?: boolean): boolean;
}

export interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: object;
  attrs?: NamedAttrMap;
}

/** Runs a single-output kernel function and returns its output. */
export function runKernel(
  fn: KernelFunc,
  backend: KernelBackend,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
): TensorInfo {
  const out = (fn as unknown as (a: KernelArgs) => TensorInfo | TensorInfo[])({
    inputs,
    backend,
    attrs,
  });
  if (Array.isArray(out)) throw new TypeError('runKernel expects a single-output kernel');
  return out;
}

/** A kernel config that replaces `original` (same name, backend, setup and dispose) by `kernelFunc`. */
export function replacing(
  original: KernelConfig,
  kernelFunc: (args: KernelArgs) => TensorInfo | TensorInfo[],
): KernelConfig {
  return {
    kernelName: original.kernelName,
    backendName: original.backendName,
    ...(original.setupFunc ? { setupFunc: original.setupFunc } : {}),
    ...(original.disposeFunc ? { disposeFunc: original.disposeFunc } : {}),
    kernelFunc: kernelFunc as unknown as KernelFunc,
  };
}
