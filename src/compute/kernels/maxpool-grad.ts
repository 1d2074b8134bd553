/**
 * MaxPoolGrad for the wasm backend. The backend's own MaxPoolGrad drops the gradient of every
 * window whose maximum is negative (found by the compute tests: a 2x2 window of all-negative values
 * gets dx = 0 where the cpu backend routes dy to the maximum). After a ReLU every value is >= 0, so
 * conv-relu-pool nets hid the bug, but pool-before-activation or negative inputs train wrongly.
 *
 * This kernel computes it directly on the wasm heap: for each output position, the first maximum
 * of its window (as the cpu backend picks ties) receives dy; overlapping windows accumulate.
 * NHWC, channels innermost, so one pass reads each window position once for all channels. The
 * zoo's 2x2/2 pools run four channels per instruction (./simd.ts, `maxPool2x2GradRow`: ~7 ms ->
 * ~1 ms on cnn-fedavg's first pool per step, against ~3 ns per value in JavaScript).
 *
 *   tf.registerKernel(maxPoolGradKernel('wasm'));
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelArgs } from './kernel-call.js';
import { simdKernels } from './simd.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGradKernel(backendName: string): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as unknown as HeapBackend;
    const dy = args.inputs['dy']!;
    const input = args.inputs['input']!;
    const attrs = args.attrs as unknown as PoolAttrs;
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    // Allocate first: growing the wasm memory would detach views taken earlier.
    const out = backend.makeOutput(input.shape, 'float32');
    const x = backend.typedArrayFromHeap(input) as Float32Array;
    const g = backend.typedArrayFromHeap(dy) as Float32Array;
    const dx = backend.typedArrayFromHeap(out) as Float32Array;
    const { batchSize, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
    const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
    const { effectiveFilterHeight: efh, effectiveFilterWidth: efw } = info;
    const { top: pt, left: pl } = info.padInfo;
    // Fast path: 2x2 windows, stride 2, every window inside the input (the zoo's pools); four
    // unrolled comparisons per channel instead of the general window loop (~3x faster).
    if (
      efh === 2 &&
      efw === 2 &&
      sh === 2 &&
      sw === 2 &&
      pt === 0 &&
      pl === 0 &&
      2 * OH <= H &&
      2 * OW <= W
    ) {
      const simd = C % 4 === 0 ? simdKernels(backend) : undefined;
      // The SIMD rows write every position their windows cover; the rest (odd sizes) is zeroed.
      if (!simd || 2 * OH < H || 2 * OW < W) dx.fill(0);
      if (simd) {
        // Four channels per instruction, on the heap.
        const at = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
        const [xo, go, dxo] = [at(input), at(dy), at(out)];
        const rowBytes = W * C * 4;
        for (let b = 0; b < batchSize; b++) {
          for (let oh = 0; oh < OH; oh++) {
            const win = (b * H + 2 * oh) * W * C * 4;
            simd.maxPool2x2GradRow(
              dxo + win,
              xo + win,
              go + (b * OH + oh) * OW * C * 4,
              OW,
              rowBytes,
              C,
            );
          }
        }
      } else maxPool2x2Grad(x, g, dx, batchSize, H, W, C, OH, OW);
      return out;
    }
    dx.fill(0);
    const maxVal = new Float32Array(C);
    const maxIdx = new Int32Array(C);
    for (let b = 0; b < batchSize; b++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = oh * sh - pt;
        let rMin = r0;
        while (rMin < 0) rMin += dh;
        const rMax = Math.min(H, r0 + efh);
        for (let ow = 0; ow < OW; ow++) {
          const c0 = ow * sw - pl;
          let cMin = c0;
          while (cMin < 0) cMin += dw;
          const cMax = Math.min(W, c0 + efw);
          maxVal.fill(Number.NEGATIVE_INFINITY);
          maxIdx.fill(-1);
          for (let r = rMin; r < rMax; r += dh) {
            for (let c = cMin; c < cMax; c += dw) {
              const base = ((b * H + r) * W + c) * C;
              for (let ch = 0; ch < C; ch++) {
                const v = x[base + ch]!;
                if (v > maxVal[ch]!) {
                  maxVal[ch] = v;
                  maxIdx[ch] = base + ch;
                }
              }
            }
          }
          const gBase = ((b * OH + oh) * OW + ow) * C;
          for (let ch = 0; ch < C; ch++) {
            const i = maxIdx[ch]!;
            if (i >= 0) dx[i] = dx[i]! + g[gBase + ch]!;
          }
        }
      }
    }
    return out;
  };
  return {
    kernelName: 'MaxPoolGrad',
    backendName,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

/** dx for 2x2/2 windows fully inside the input; ties go to the first maximum in row-major order. */
function maxPool2x2Grad(
  x: Float32Array,
  g: Float32Array,
  dx: Float32Array,
  batch: number,
  H: number,
  W: number,
  C: number,
  OH: number,
  OW: number,
): void {
  const rowStride = W * C;
  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const rowBase = (b * H + 2 * oh) * rowStride;
      const gRow = (b * OH + oh) * OW * C;
      for (let ow = 0; ow < OW; ow++) {
        const p00 = rowBase + 2 * ow * C;
        const p01 = p00 + C;
        const p10 = p00 + rowStride;
        const p11 = p10 + C;
        const gBase = gRow + ow * C;
        for (let ch = 0; ch < C; ch++) {
          // -Infinity start and strict '>' as the cpu backend: NaNs never win.
          let m = Number.NEGATIVE_INFINITY;
          let at = -1;
          let v = x[p00 + ch]!;
          if (v > m) {
            m = v;
            at = p00 + ch;
          }
          v = x[p01 + ch]!;
          if (v > m) {
            m = v;
            at = p01 + ch;
          }
          v = x[p10 + ch]!;
          if (v > m) {
            m = v;
            at = p10 + ch;
          }
          v = x[p11 + ch]!;
          if (v > m) at = p11 + ch;
          if (at >= 0) dx[at] = g[gBase + ch]!;
        }
      }
    }
  }
}
