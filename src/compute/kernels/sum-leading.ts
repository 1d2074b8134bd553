/**
 * Sum over the leading axes for the wasm backend: the bias gradient of every conv and dense layer
 * (dy of shape [N,H,W,C] summed to [C]). The wasm Sum kernel reduces only innermost axes, so for
 * leading axes it first transposes the whole tensor; on a [32,28,28,64] gradient that costs
 * ~8-13 ms per step. Summing rows straight off the wasm heap into a float64 accumulator is one
 * sequential pass (~1-2 ms) and rounds once at the end. Other reductions keep the original kernel.
 *
 *   tf.registerKernel(sumLeadingAxesKernel(tf.getKernel('Sum', 'wasm')!));
 */
import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, replacing } from './kernel-call.js';
import { simdKernels } from './simd.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  disposeData(dataId: object): boolean;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

/** Below this many elements the original kernel's fixed costs do not matter. */
const MIN_SIZE = 4096;

export function sumLeadingAxesKernel(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const x = args.inputs['x']!;
    const { axis, keepDims } = args.attrs as unknown as {
      axis: number | number[];
      keepDims: boolean;
    };
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || !leading || size < MIN_SIZE) {
      return original.kernelFunc(args) as tf.TensorInfo;
    }
    const k = axes.length;
    const rest = x.shape.slice(k);
    const inner = tf.util.sizeFromShape(rest);
    const outer = size / inner;
    const backend = args.backend as unknown as HeapBackend;
    const outShape = keepDims ? [...new Array<number>(k).fill(1), ...rest] : rest;
    // Allocate first: growing the wasm memory would detach views taken earlier.
    const out = backend.makeOutput(outShape, 'float32');
    const simd = simdKernels(backend);
    if (simd) {
      // The same float64 sums, in the same order, two columns per instruction on the heap.
      const scratch = backend.makeOutput([2 * inner], 'float32');
      try {
        const s = backend.typedArrayFromHeap(scratch) as Float32Array;
        const acc = new Float64Array(s.buffer, s.byteOffset, inner);
        acc.fill(0);
        const at = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
        simd.sumRowsF64(at(scratch), at(x), outer, inner);
        // Views again: nothing allocated since, but keep to the rule of fresh views after a call.
        const sums = backend.typedArrayFromHeap(scratch) as Float32Array;
        (backend.typedArrayFromHeap(out) as Float32Array).set(
          new Float64Array(sums.buffer, sums.byteOffset, inner),
        );
      } finally {
        backend.disposeData(scratch.dataId);
      }
      return out;
    }
    const xs = backend.typedArrayFromHeap(x) as Float32Array;
    const acc = new Float64Array(inner);
    for (let o = 0, base = 0; o < outer; o++, base += inner) {
      for (let i = 0; i < inner; i++) acc[i]! += xs[base + i]!;
    }
    (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
    return out;
  };
  return replacing(original, kernelFunc);
}
