/**
 * Per-node products of stacked matrices, `c[g] = a[g] · b[g]` for a `[G, m, k]` and b `[G, k, n]`,
 * for the batched trainer (batched-mlp.ts). Outside any gradient tape: the trainer writes its
 * backward pass out.
 *
 *   const c = groupedMatMul(a, b);   // [G, m, n]
 *
 * On wasm, tfjs's BatchMatMul with G > 1 runs a plain loop (7x slower than XNNPACK on an MLP's
 * shapes), and taking the slices as tensors costs more than the products: Slice (so unstack) copies
 * the whole stacked tensor out of the wasm heap for each slice, Gather walks it element by element.
 * So each slice of a, b and c is registered with the wasm module as a tensor over the stacked
 * tensor's memory (no copy), multiplied by the module's own BatchMatMul with one matrix (its XNNPACK
 * path), and unregistered. Other backends get tf.matMul, whose batched form is theirs to make fast.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's backend this uses (its public fields, untyped in tfjs). */
interface WasmBackend {
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

type WasmMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: number,
  transposeB: number,
  outId: number,
) => void;

const calls = new WeakMap<object, WasmMatMul>();
// Ids for the slice views: far above the ids tfjs hands out (it counts up from 1), so never equal.
let nextViewId = 2 ** 30;

function wasmMatMul(backend: WasmBackend): WasmMatMul {
  let fn = calls.get(backend);
  if (!fn) {
    fn = backend.wasm.cwrap('BatchMatMul', null, [
      'number',
      'array',
      'number',
      'number',
      'array',
      'number',
      'number',
      'number',
      'number',
    ]) as WasmMatMul;
    calls.set(backend, fn);
  }
  return fn;
}

const shapeBytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);

export function groupedMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [G, m, k] = a.shape;
  const [Gb, kb, n] = b.shape;
  if (G !== Gb || k !== kb) {
    throw new RangeError(`groupedMatMul: shapes [${a.shape}] and [${b.shape}] do not multiply`);
  }
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b);
  const backend = tf.backend() as unknown as WasmBackend;
  const out = backend.makeOutput([G, m, n], 'float32');
  const base = (t: { dataId: object }) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
  const [aBase, bBase, cBase] = [base(a), base(b), base(out)];
  const matMul = wasmMatMul(backend);
  const aShape = shapeBytes([1, m, k]);
  const bShape = shapeBytes([1, k, n]);
  const { tfjs } = backend.wasm;
  for (let g = 0; g < G; g++) {
    const ids = [nextViewId++, nextViewId++, nextViewId++] as const;
    if (nextViewId > 2 ** 31 - 8) nextViewId = 2 ** 30;
    tfjs.registerTensor(ids[0], m * k, aBase + g * m * k * 4);
    tfjs.registerTensor(ids[1], k * n, bBase + g * k * n * 4);
    tfjs.registerTensor(ids[2], m * n, cBase + g * m * n * 4);
    try {
      matMul(ids[0], aShape, 3, ids[1], bShape, 3, 0, 0, ids[2]);
    } finally {
      // Unregisters only (the memory is the stacked tensors'), and drops the XNNPACK operator
      // the module cached for this right-hand operand.
      for (const id of ids) tfjs.disposeData(id);
    }
  }
  return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor3D;
}
