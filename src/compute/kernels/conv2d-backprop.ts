/**
 * Conv2D gradients for the wasm backend, built from the wasm backend's fast (XNNPACK) Conv2D.
 *
 * The wasm backend registers no Conv2DBackpropFilter at all, so a conv net cannot train on it, and
 * its Conv2DBackpropInput is a plain scalar loop. Both gradients are themselves convolutions:
 *
 * - filter gradient: dF[i,j,ci,co] = Σ_{n,oh,ow} x[n, oh·s+i-pt, ow·s+j-pl, ci] · dy[n,oh,ow,co].
 *   With the input channels as the batch and the batch as the channels (x → [Cin,H,W,N]) and dy as
 *   the filter (dy → [OH,OW,N,Cout]), that is a stride-1 conv dilated by the forward stride,
 *   whose [Cin,fh,fw,Cout] output is transposed back to the filter layout [fh,fw,Cin,Cout].
 * - input gradient: dx = conv(dy dilated by the stride, filter rotated 180° with in/out channels
 *   swapped), padded by (fh-1-pt, fw-1-pl); for stride 1 this is a plain conv2d.
 *
 * With ./gemm.ts's kernels (patch `conv2d-gemm`), stride-1 gradients are GEMMs over each image's
 * patch matrix instead (im2col): no multiplications by the padding's zeros (the input gradient's
 * conv form pads dy by fh-1 all round, which doubles the cnn-fedavg conv2's work) and no
 * per-call packing of the operands.
 *
 *   tf.registerKernel(conv2dBackpropFilterKernel(wasmKernel('Conv2D'), wasmKernel('Transpose'), ...));
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { ACCUMULATE, type ConvGeometry, type GemmKernels } from './gemm.js';
import { type KernelArgs, type KernelBackend, replacing, runKernel } from './kernel-call.js';

type Pad =
  | 'valid'
  | 'same'
  | number
  | [[number, number], [number, number], [number, number], [number, number]];

export interface BackpropAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export interface ConvKernels {
  conv2d: KernelFunc;
  transpose: KernelFunc;
  slice: KernelFunc;
  reverse: KernelFunc;
  /** When given, stride-1 gradients run as im2col/col2im and ./gemm.ts products (see below). */
  gemm?: GemmKernels | undefined;
}

export interface HeapBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): tf.TypedArray;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

/**
 * The geometry of a stride-1, undilated NHWC convolution whose every window overlaps the input
 * (pads below the filter size), or undefined: only those take the GEMM paths.
 */
export function gemmGeometry(info: tf.backend_util.Conv2DInfo): ConvGeometry | undefined {
  const { top, left, bottom, right } = info.padInfo;
  const { filterHeight: fh, filterWidth: fw } = info;
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return undefined;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  if (Math.max(top, bottom) >= fh || Math.max(left, right) >= fw) return undefined;
  if (Math.min(top, left, bottom, right) < 0) return undefined;
  const { inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  return [inHeight, inWidth, inChannels, outHeight, outWidth, fh, fw, top, left];
}

/**
 * Filter gradient by GEMM, one image at a time: the image's patch matrix col [P, M] (P = OH·OW
 * windows, M = fh·fw·Cin), and dF [M, Cout] += colᵀ·dy_n, accumulated over the batch in the
 * filter's own layout (Cout, the product's columns, is a multiple of 8 in every zoo model; the
 * other orientation, dFᵀ = dy_nᵀ·col, measured no faster). The dilated-conv form multiplies the
 * first layers' few input channels at a poor rate (~0.1x PyTorch).
 */
function filterGradByGemm(
  g: GemmKernels,
  backend: HeapBackend,
  x: TensorInfo,
  dy: TensorInfo,
  filterShape: number[],
  geo: ConvGeometry,
): TensorInfo {
  const [H, W, Cin, OH, OW, fh, fw] = geo;
  const n = x.shape[0]!;
  const cout = filterShape[3]!;
  const M = fh * fw * Cin;
  const P = OH * OW;
  const out = backend.makeOutput(filterShape, 'float32');
  const col = backend.makeOutput([P, M], 'float32');
  try {
    const at = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    const [xo, dyo, co, fo] = [at(x), at(dy), at(col), at(out)];
    if (n === 0) (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
    for (let i = 0; i < n; i++) {
      g.im2col(xo + i * H * W * Cin * 4, co, ...geo);
      const dyi = dyo + i * P * cout * 4;
      g.gemm(fo, co, dyi, 0, M, cout, P, 4, 4 * M, 4 * cout, 4 * cout, 4, i === 0 ? 0 : ACCUMULATE);
    }
  } finally {
    backend.disposeData(col.dataId);
  }
  return out;
}

/**
 * Input gradient by GEMM, one image at a time: the window gradients dcol [P, M] = dy_n·Wᵀ (W as
 * [M, Cout], transposed once per call), added back into dx by col2im.
 */
function inputGradByGemm(
  g: GemmKernels,
  backend: HeapBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  inputShape: number[],
  geo: ConvGeometry,
): TensorInfo {
  const [H, W, Cin, OH, OW, fh, fw] = geo;
  const n = inputShape[0]!;
  const cout = filter.shape[3]!;
  const M = fh * fw * Cin;
  const P = OH * OW;
  const dx = backend.makeOutput(inputShape, 'float32');
  const wT = backend.makeOutput([cout, M], 'float32');
  const dcol = backend.makeOutput([P, M], 'float32');
  try {
    (backend.typedArrayFromHeap(dx) as Float32Array).fill(0);
    const at = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    const [dyo, wo, dxo, co] = [at(dy), at(wT), at(dx), at(dcol)];
    g.transpose(wo, at(filter), M, cout);
    for (let i = 0; i < n; i++) {
      g.gemm(co, dyo + i * P * cout * 4, wo, 0, P, M, cout, 4 * cout, 4, 4 * M, 4 * M, 4, 0);
      g.col2im(dxo + i * H * W * Cin * 4, co, ...geo);
    }
  } finally {
    backend.disposeData(wT.dataId);
    backend.disposeData(dcol.dataId);
  }
  return dx;
}

export function convInfo(
  xShape: readonly number[],
  filterShape: readonly number[],
  attrs: BackpropAttrs,
): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('wasm Conv2D gradients support only dataFormat NHWC (channelsLast)');
  }
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad as 'valid',
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** Drops `cutH` rows at the bottom and `cutW` columns at the right of an NHWC tensor. */
function cropBottomRight(
  k: ConvKernels,
  backend: KernelBackend,
  x: TensorInfo,
  cutH: number,
  cutW: number,
): TensorInfo | undefined {
  if (cutH <= 0 && cutW <= 0) return undefined;
  const [n, h, w, c] = x.shape as [number, number, number, number];
  return runKernel(
    k.slice,
    backend,
    { x },
    { begin: [0, 0, 0, 0], size: [n, h - Math.max(0, cutH), w - Math.max(0, cutW), c] },
  );
}

/** Conv2DBackpropFilter (inputs x, dy; attr filterShape) as one dilated conv2d and transposes. */
export function conv2dBackpropFilterKernel(k: ConvKernels, backendName: string): KernelConfig {
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const backend = args.backend as KernelBackend;
    const x = args.inputs['x']!;
    const dy = args.inputs['dy']!;
    const attrs = args.attrs as unknown as BackpropAttrs & { filterShape: number[] };
    const info = convInfo(x.shape, attrs.filterShape, attrs);
    const geo = k.gemm && x.dtype === 'float32' ? gemmGeometry(info) : undefined;
    if (geo) {
      return filterGradByGemm(k.gemm!, backend as HeapBackend, x, dy, attrs.filterShape, geo);
    }
    const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
    const { top: pt, left: pl } = info.padInfo;
    // Bottom/right padding that makes the output exactly fh x fw; negative means rows of x that
    // no output position reads (a 'valid' conv whose stride does not divide the input): crop them.
    let pb = fh + (info.outHeight - 1) * sh - info.inHeight - pt;
    let pr = fw + (info.outWidth - 1) * sw - info.inWidth - pl;
    const temps: TensorInfo[] = [];
    try {
      let xs = x;
      const cropped = cropBottomRight(k, backend, x, -pb, -pr);
      if (cropped) {
        temps.push(cropped);
        xs = cropped;
        pb = Math.max(0, pb);
        pr = Math.max(0, pr);
      }
      const xT = runKernel(k.transpose, backend, { x: xs }, { perm: [3, 1, 2, 0] });
      temps.push(xT);
      const dyT = runKernel(k.transpose, backend, { x: dy }, { perm: [1, 2, 0, 3] });
      temps.push(dyT);
      const r = runKernel(k.conv2d, backend, { x: xT, filter: dyT }, {
        strides: [1, 1],
        dilations: [sh, sw],
        pad: [
          [0, 0],
          [pt, pb],
          [pl, pr],
          [0, 0],
        ],
        dataFormat: 'NHWC',
      } as unknown as NamedAttrMap);
      temps.push(r);
      return runKernel(k.transpose, backend, { x: r }, { perm: [1, 2, 0, 3] });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  return {
    kernelName: 'Conv2DBackpropFilter',
    backendName,
    kernelFunc: kernelFunc as unknown as KernelFunc,
  };
}

/**
 * Conv2DBackpropInput (inputs dy, filter; attr inputShape) as a conv2d of dy with the rotated,
 * channel-swapped filter. Only stride 1 takes this path; strided convs keep the original kernel
 * (the model zoo's convs are all stride 1).
 */
export function conv2dBackpropInputKernel(k: ConvKernels, original: KernelConfig): KernelConfig {
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const backend = args.backend as KernelBackend;
    const dy = args.inputs['dy']!;
    const filter = args.inputs['filter']!;
    const attrs = args.attrs as unknown as BackpropAttrs & { inputShape: number[] };
    const info = convInfo(attrs.inputShape, filter.shape, attrs);
    const geo = k.gemm && dy.dtype === 'float32' ? gemmGeometry(info) : undefined;
    if (geo) {
      return inputGradByGemm(k.gemm!, backend as HeapBackend, dy, filter, attrs.inputShape, geo);
    }
    if (info.strideHeight !== 1 || info.strideWidth !== 1) {
      return original.kernelFunc(args) as TensorInfo;
    }
    const { filterHeight: fh, filterWidth: fw } = info;
    const { top: pt, left: pl } = info.padInfo;
    const temps: TensorInfo[] = [];
    try {
      // [fh,fw,Cin,Cout] -> rotate 180° -> [fh,fw,Cout,Cin]
      const rot = runKernel(k.reverse, backend, { x: filter }, { dims: [0, 1] });
      temps.push(rot);
      const rotT = runKernel(k.transpose, backend, { x: rot }, { perm: [0, 1, 3, 2] });
      temps.push(rotT);
      const top = fh - 1 - pt;
      const left = fw - 1 - pl;
      const bottom = info.inHeight + fh - 1 - info.outHeight - top;
      const right = info.inWidth + fw - 1 - info.outWidth - left;
      return runKernel(k.conv2d, backend, { x: dy, filter: rotT }, {
        strides: [1, 1],
        dilations: [1, 1],
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
      } as unknown as NamedAttrMap);
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  return replacing(original, kernelFunc);
}
