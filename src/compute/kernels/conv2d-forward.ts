/**
 * Conv2D for the wasm backend as im2col and ./gemm.ts's SIMD product, one image at a time, for
 * stride-1, undilated NHWC convolutions (every conv of the model zoo): y_n [P, Cout] = col_n [P, M]
 * · W [M, Cout] with P = OH·OW windows and M = fh·fw·Cin, the filter read in its own layout. XNNPACK
 * packs the filter on every call whose filter is new (after every optimizer step); its conv ran
 * cnn-small's second layer at ~0.13x PyTorch. Anything else goes to the backend's own kernel.
 *
 *   tf.registerKernel(conv2dGemmKernel(tf.getKernel('Conv2D', 'wasm')!, gemmKernels(backend)!));
 */
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { type BackpropAttrs, gemmGeometry, type HeapBackend } from './conv2d-backprop.js';
import type { ConvGeometry, GemmKernels } from './gemm.js';
import { type KernelArgs, replacing } from './kernel-call.js';

export function conv2dGemmKernel(original: KernelConfig, g: GemmKernels): KernelConfig {
  return replacing(original, (args: KernelArgs): TensorInfo => {
    const x = args.inputs['x']!;
    const filter = args.inputs['filter']!;
    const attrs = args.attrs as unknown as BackpropAttrs & {
      dilations?: number | [number, number];
    };
    const nhwc = attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC';
    const info =
      nhwc && x.dtype === 'float32' && filter.dtype === 'float32'
        ? tf.backend_util.computeConv2DInfo(
            x.shape as [number, number, number, number],
            filter.shape as [number, number, number, number],
            attrs.strides,
            attrs.dilations ?? 1,
            attrs.pad as 'valid',
            attrs.dimRoundingMode,
          )
        : undefined;
    const geo = info ? gemmGeometry(info) : undefined;
    if (!info || !geo) return original.kernelFunc(args) as TensorInfo;
    return convByGemm(g, args.backend as HeapBackend, x, filter, info.outShape, geo, undefined, 0);
  });
}

/**
 * y = conv(x, filter) (+ bias per output channel, then ReLU with `flags` RELU) by im2col and GEMM,
 * one image at a time; `geo` from gemmGeometry.
 */
export function convByGemm(
  g: GemmKernels,
  backend: HeapBackend,
  x: TensorInfo,
  filter: TensorInfo,
  outShape: number[],
  geo: ConvGeometry,
  bias: TensorInfo | undefined,
  flags: number,
): TensorInfo {
  const [H, W, Cin, OH, OW, fh, fw] = geo;
  const n = x.shape[0]!;
  const cout = filter.shape[3]!;
  const M = fh * fw * Cin;
  const P = OH * OW;
  const y = backend.makeOutput(outShape, 'float32');
  const col = backend.makeOutput([P, M], 'float32');
  try {
    const at = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    const [xo, fo, yo, co] = [at(x), at(filter), at(y), at(col)];
    const bo = bias ? at(bias) : 0;
    for (let i = 0; i < n; i++) {
      g.im2col(xo + i * H * W * Cin * 4, co, ...geo);
      g.gemm(yo + i * P * cout * 4, co, fo, bo, P, cout, M, 4 * M, 4, 4 * cout, 4 * cout, 4, flags);
    }
  } finally {
    backend.disposeData(col.dataId);
  }
  return y;
}
