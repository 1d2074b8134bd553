/**
 * The wasm kernels behind ../fused.ts: one pass of ./simd.ts over the backend's heap per call, the
 * output allocated by the backend like any kernel's. Registered by wasm-patches.ts (patch
 * `fused-optimizer-passes`) only when the SIMD module instantiates; without them ../fused.ts runs
 * the same arithmetic as separate tfjs ops.
 *
 *   for (const k of fusedKernels('wasm', simd)) tf.registerKernel(k);
 */
import type * as tf from '@tensorflow/tfjs';
import { ADD_SCALED, ASAM_PERTURB, ASAM_SUM_SQ } from '../fused.js';
import type { KernelArgs } from './kernel-call.js';
import type { SimdKernels } from './simd.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

function kernel(
  kernelName: string,
  backendName: string,
  f: (
    b: HeapBackend,
    inputs: Record<string, tf.TensorInfo>,
    attrs: Record<string, number>,
  ) => tf.TensorInfo,
): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs) =>
    f(args.backend as HeapBackend, args.inputs, args.attrs as unknown as Record<string, number>);
  return { kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/** Elements per float32 partial sum of ASAM_SUM_SQ (1,024 per SIMD lane). */
const SUM_BLOCK = 4096;

export function fusedKernels(backendName: string, simd: SimdKernels): tf.KernelConfig[] {
  // Offsets are read after the output is allocated: allocating can move nothing (offsets are
  // stable), but it can grow the memory, so no typed-array view is held across it.
  const at = (b: HeapBackend, t: tf.TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const size = (t: tf.TensorInfo) => t.shape.reduce((a, d) => a * d, 1);
  return [
    kernel(ADD_SCALED, backendName, (b, { x, y }, { a }) => {
      const out = b.makeOutput(x!.shape, 'float32');
      simd.axpy(at(b, out), at(b, x!), at(b, y!), a!, size(x!));
      return out;
    }),
    kernel(ASAM_SUM_SQ, backendName, (b, { w, g }, { eta }) => {
      // Float32 lanes summed over blocks of SUM_BLOCK, the blocks summed in a double: a float32
      // running sum over a whole 784x200 weight would lose ~1e-5 of the total.
      const n = size(g!);
      const go = at(b, g!);
      const wo = at(b, w!);
      let v = 0;
      for (let i = 0; i < n; i += SUM_BLOCK) {
        const len = Math.min(SUM_BLOCK, n - i);
        v += Number.isNaN(eta!)
          ? simd.sumSq(go + 4 * i, len)
          : simd.sumSqScaled(wo + 4 * i, go + 4 * i, eta!, len);
      }
      const out = b.makeOutput([], 'float32');
      (b.typedArrayFromHeap(out) as Float32Array)[0] = v;
      return out;
    }),
    kernel(ASAM_PERTURB, backendName, (b, { w, g }, { eta, factor }) => {
      const out = b.makeOutput(w!.shape, 'float32');
      const n = size(w!);
      if (Number.isNaN(eta!)) simd.axpy(at(b, out), at(b, w!), at(b, g!), factor!, n);
      else simd.perturbScaled(at(b, out), at(b, w!), at(b, g!), eta!, factor!, n);
      return out;
    }),
  ];
}
