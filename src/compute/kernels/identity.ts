/**
 * Identity, and Cast to the dtype a tensor already has, sharing the input's data instead of copying
 * it, for the wasm backend. The engine
 * runs Identity to keep every tensor a gradient needs (`saved` inputs and outputs of each taped
 * op), so the shipped kernel, which copies, duplicated every activation of a forward pass: three
 * copies of [32,28,28,64] per cnn-fedavg step, 5 ms of 250. tfjs tensors are immutable (a
 * Variable's assign swaps its data id, it never writes the old data) and every wasm kernel writes
 * only to fresh outputs, so sharing is safe; the data is freed when its last holder is disposed,
 * as for Reshape, which the backend already implements this way. This is also what the cpu
 * backend's Identity does. A Cast to the same dtype is the same copy: ReLU's gradient casts its
 * float32 step mask to float32 ([32,28,28,64] per cnn-fedavg step).
 *
 *   tf.registerKernel(sharingIdentityKernel(tf.getKernel('Identity', 'wasm')!));
 *   tf.registerKernel(sharingIdentityKernel(tf.getKernel('Cast', 'wasm')!));
 */
import type * as tf from '@tensorflow/tfjs';
import type { KernelArgs } from './kernel-call.js';

interface RefCountingBackend {
  incRef(dataId: tf.DataId): void;
}

export function sharingIdentityKernel(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const x = args.inputs['x']!;
    const dtype = (args.attrs as { dtype?: tf.DataType } | undefined)?.dtype ?? x.dtype;
    // Strings live outside the heap, and a real cast converts: the original handles both.
    if (x.dtype === 'string' || dtype !== x.dtype)
      return original.kernelFunc(args) as tf.TensorInfo;
    (args.backend as RefCountingBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return {
    kernelName: original.kernelName,
    backendName: original.backendName,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}
