/**
 * Products of stacked matrices for the batched trainer and evaluator (batched-mlp.ts,
 * batched-eval.ts): `c[g] = op(a[g]) · op(b[g])` for a `[G, m, k]` and b `[G, k, n]` (either may
 * have G = 1, shared by all), in one call. Outside any gradient tape: the trainer writes its backward
 * pass out.
 *
 *   const c = stackedMatMul(a, b);              // [G, m, n]
 *   const dw = stackedMatMul(x, dz, true);      // x[g]ᵀ · dz[g], transposed by strides
 *
 * On wasm with flatmesh's SIMD GEMM (compute/kernels/gemm.ts) that is its BatchMatMul kernel (patch
 * `matmul-simd-gemm`): one call multiplying each slice where it lies, transposes read by strides,
 * here on the relaxed-SIMD (FMA) variant of the GEMM where it instantiates, as the unbatched
 * engine's layers run it.
 * Without it (no wasm SIMD), tfjs-wasm's BatchMatMul with G > 1 runs a plain loop (7x slower than
 * XNNPACK on an MLP's shapes), and taking the slices as tensors costs more than the products: Slice
 * (so unstack) copies the whole stacked tensor out of the wasm heap for each slice, Gather walks it
 * element by element. So there `groupedMatMul` registers each slice of a, b and c with the wasm
 * module as a tensor over the stacked tensor's memory (no copy), multiplies it by the module's own
 * BatchMatMul with one matrix (its XNNPACK path), and unregisters it. Other backends get tf.matMul,
 * whose batched form is theirs to make fast.
 */
import * as tf from '@tensorflow/tfjs';
import { fmaGemmKernels, gemmKernels } from '../compute/kernels/gemm.js';
import type { KernelArgs } from '../compute/kernels/kernel-call.js';
import { gemmMatMulKernel } from '../compute/kernels/matmul-gemm.js';
import type { WasmBackend } from './wasm-heap.js';

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

export function stackedMatMul(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  transposeA = false,
  transposeB = false,
): tf.Tensor3D {
  const fma = fmaMatMul();
  if (fma) {
    const backend = tf.backend();
    const out = fma({ inputs: { a, b }, attrs: { transposeA, transposeB }, backend });
    return tf.engine().makeTensorFromTensorInfo(out as tf.TensorInfo) as tf.Tensor3D;
  }
  const slowLoop =
    tf.getBackend() === 'wasm' &&
    gemmKernels(tf.backend()) === undefined &&
    a.shape[0] === b.shape[0] &&
    a.shape[0] > 1;
  if (!slowLoop) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() =>
    groupedMatMul(transposeA ? transposeInner(a) : a, transposeB ? transposeInner(b) : b),
  );
}

const fmaKernels = new WeakMap<object, ((args: KernelArgs) => unknown) | null>();

/**
 * On wasm where the relaxed-SIMD GEMM instantiates (compute/kernels/gemm.ts, FMA where the CPU has
 * it; 15-25% less CPU than the plain one): BatchMatMul's GEMM kernel on that GEMM, as the unbatched
 * engine's dense layers use it (patch `gemm-fma`). tf.matMul itself keeps the plain GEMM.
 */
function fmaMatMul(): ((args: KernelArgs) => unknown) | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend();
  let k = fmaKernels.get(backend);
  if (k === undefined) {
    const gemm = fmaGemmKernels(backend);
    const base = tf.getKernel('BatchMatMul', 'wasm');
    k = gemm && base ? (gemmMatMulKernel(base, gemm).kernelFunc as never) : null;
    fmaKernels.set(backend, k);
  }
  return k ?? undefined;
}

/** `[G, m, n]` -> `[G, n, m]`: each node's matrix transposed (one Transpose for all nodes). */
function transposeInner(t: tf.Tensor3D): tf.Tensor3D {
  return tf.transpose(t, [0, 2, 1]);
}

/** c[g] = a[g] · b[g], each slice by XNNPACK on wasm (see the header), tf.matMul elsewhere. */
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
