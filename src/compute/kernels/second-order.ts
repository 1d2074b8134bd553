/**
 * Gradients of gradient kernels, so that a model's loss can be differentiated twice (Hessian-vector
 * products by double backprop, src/learn/flatness/hessian.ts). tfjs 4.22 registers gradients for
 * the forward ops and for Conv2DBackpropInput, but none for Equal, Conv2DBackpropFilter (the filter
 * gradient of every conv layer) or MaxPoolGrad (the input gradient of every max pool): a second
 * backward pass through a conv net throws "gradient function not found". This registers them, for
 * every backend, as compositions of ordinary ops — so they run on whatever kernels the backend has,
 * including the wasm patches of ./wasm-patches.ts, which are forward kernels and stay unchanged.
 *
 *   registerSecondOrderGradients();   // idempotent
 *   tf.variableGrads(() => dot(tf.variableGrads(loss).grads, v)).grads   // now defined for CNNs
 *
 * - Conv2DBackpropFilter: F(x, dy)[i,j,ci,co] = Σ x[n, oh·s+i-p, ow·s+j-p, ci]·dy[n,oh,ow,co] is
 *   bilinear in x and dy. For an upstream G of the filter's shape, ∂⟨G,F⟩/∂dy = conv2d(x, G) and
 *   ∂⟨G,F⟩/∂x = conv2DBackpropInput(x.shape, dy, G): the forward and input-gradient convolutions
 *   with G as the filter.
 * - Equal: tfjs's Max gradient (inside logsumexp, the loss) masks dy with equal(x, max(x)); a
 *   second pass differentiates that mask, which is piecewise constant: its derivative is zero.
 * - MaxPoolGrad: dx = routing of dy to the first maximum of each window, linear in dy and piecewise
 *   constant in the pooled input (zero derivative almost everywhere). For an upstream G of the
 *   input's shape, ∂⟨G,dx⟩/∂dy gathers G at each window's first maximum: for each window offset
 *   (i,j), in the cpu backend's scan order, take the strided slice of G and of the (-∞-padded)
 *   input at that offset, and keep it where the input equals the pooled maximum and no earlier
 *   offset already did.
 */
import * as tf from '@tensorflow/tfjs';

type Pad = 'valid' | 'same' | number;

interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

let registered = false;

/** Registers the missing second-order gradients (see the module comment). Idempotent. */
export function registerSecondOrderGradients(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({
    kernelName: 'Equal',
    inputsToSave: ['a', 'b'],
    gradFunc: (_dy, saved) => ({
      a: () => tf.zerosLike(saved[0]!),
      b: () => tf.zerosLike(saved[1]!),
    }),
  });
  tf.registerGradient({
    kernelName: 'Conv2DBackpropFilter',
    inputsToSave: ['x', 'dy'],
    gradFunc: (g, saved, attrs) => {
      const [x, dy] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as ConvAttrs;
      if (a.dataFormat === 'NCHW') {
        throw new Error('second derivative of conv2d: only dataFormat NHWC is supported');
      }
      const G = g as tf.Tensor4D;
      return {
        x: () => tf.conv2dTranspose(dy, G, x.shape, a.strides, a.pad as 'same', a.dimRoundingMode),
        dy: () => tf.conv2d(x, G, a.strides, a.pad as 'same', 'NHWC', 1, a.dimRoundingMode),
      };
    },
  });
  tf.registerGradient({
    kernelName: 'MaxPoolGrad',
    inputsToSave: ['input', 'output'],
    gradFunc: (g, saved, attrs) => {
      const [input, output] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as PoolAttrs;
      return {
        dy: () => gatherAtWindowMaxima(g as tf.Tensor4D, input, output, a),
        input: () => tf.zerosLike(input),
        output: () => tf.zerosLike(output),
      };
    },
  });
}

/** G (input-shaped) read at each pooling window's first maximum: an output-shaped tensor. */
function gatherAtWindowMaxima(
  g: tf.Tensor4D,
  input: tf.Tensor4D,
  output: tf.Tensor4D,
  a: PoolAttrs,
): tf.Tensor4D {
  const info = tf.backend_util.computePool2DInfo(
    input.shape,
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
  const { top, left, bottom, right } = info.padInfo;
  const pads: [number, number][] = [
    [0, 0],
    [Math.max(0, top), Math.max(0, bottom)],
    [Math.max(0, left), Math.max(0, right)],
    [0, 0],
  ];
  const xp = tf.pad(input, pads, Number.NEGATIVE_INFINITY);
  const gp = tf.pad(g, pads, 0);
  const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  const [n, , , c] = input.shape;
  let taken = tf.zerosLike(output).cast('bool');
  let acc = tf.zerosLike(output);
  for (let i = 0; i < info.filterHeight; i++) {
    for (let j = 0; j < info.filterWidth; j++) {
      const begin = [0, i, j, 0];
      const end = [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c];
      const strides = [1, sh, sw, 1];
      const xi = tf.stridedSlice(xp, begin, end, strides);
      const here = tf.logicalAnd(tf.equal(xi, output), tf.logicalNot(taken));
      const gi = tf.stridedSlice(gp, begin, end, strides);
      acc = tf.add(acc, tf.where(here, gi, tf.zerosLike(gi)));
      taken = tf.logicalOr(taken, here);
    }
  }
  return acc as tf.Tensor4D;
}
