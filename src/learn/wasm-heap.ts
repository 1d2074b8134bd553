/**
 * Reads and copies of float32 tensors inside tfjs-wasm's memory (its heap), where tfjs's own
 * operations would first copy a whole tensor out into JavaScript: garbage of a model's size per node
 * and round, which V8 collects with full collections ("external memory pressure"). Other backends
 * get the plain tfjs operations.
 *
 *   readInto(variable, out, offset);     // out.set(variable.dataSync(), offset), without the copy
 *   const parts = stackedSlices(t);      // tf.unstack(t), each slice copied within the heap
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's backend this uses (its public fields, untyped in tfjs). */
export interface WasmBackend {
  wasm: {
    HEAPU8: Uint8Array;
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

function wasmBackend(): WasmBackend | undefined {
  return tf.getBackend() === 'wasm' ? (tf.backend() as unknown as WasmBackend) : undefined;
}

/** `out.set(t.dataSync(), offset)` for a float32 tensor, read straight from the heap on wasm. */
export function readInto(t: tf.Tensor, out: Float32Array, offset: number): void {
  const backend = wasmBackend();
  const info = backend && t.dtype === 'float32' ? backend.dataIdMap.get(t.dataId) : undefined;
  if (!backend || !info) {
    out.set(t.dataSync() as Float32Array, offset);
    return;
  }
  out.set(new Float32Array(backend.wasm.HEAPU8.buffer, info.memoryOffset, t.size), offset);
}

/**
 * The slices `t[g]` of a stacked tensor as tensors of their own. On wasm each is copied inside the
 * backend's memory: tfjs-wasm's Slice (so tf.unstack) first copies the whole stacked tensor out of
 * the heap into JavaScript for every slice, G times the tensor in garbage.
 */
export function stackedSlices(t: tf.Tensor3D): tf.Tensor2D[] {
  const [G, r, c] = t.shape;
  if (!wasmBackend()) return tf.unstack(t) as tf.Tensor2D[];
  const backend = wasmBackend()!;
  const bytes = r * c * 4;
  const at = (x: { dataId: object }) => backend.dataIdMap.get(x.dataId)!.memoryOffset;
  return Array.from({ length: G }, (_, g) => {
    const out = backend.makeOutput([r, c], 'float32');
    // The heap view is read after the allocation, which may have grown (and replaced) the memory.
    const src = at(t) + g * bytes;
    backend.wasm.HEAPU8.copyWithin(at(out), src, src + bytes);
    return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor2D;
  });
}
