/**
 * A dense layer, a conv layer's bias and ReLU, and the softmax cross-entropy loss as one kernel each,
 * with first-order gradients of one kernel per input: a batch-32 MLP step runs ~30 kernels instead
 * of ~90, and a conv layer's bias and ReLU cost no pass of their own. At these shapes tfjs's
 * per-kernel cost (the engine's bookkeeping, the tape, a tensor per intermediate) is as large as the
 * arithmetic, so fewer kernels is what makes a step faster. On the wasm backend the kernels are
 * ./kernels/layer-kernels.ts (patch `fused-layers`); on every other backend, and wherever a kernel
 * is not registered, these functions run the plain tfjs ops they replace.
 *
 *   const h = dense(x, w, b, true);              // relu(x·W + b), x [batch, in], W [in, out]
 *   const c = conv2dRelu(img, f, b, 'same');     // relu(conv2d(img, f, 1, 'same') + b)
 *   const loss = softmaxCrossEntropyMean(yOneHot, logits);   // as tf.losses.softmaxCrossEntropy
 *
 * Second order: the fused kernels are used only where at most one gradient tape records them, so
 * their gradients always run untaped (first order). Under nested tapes (Hessian-vector products,
 * src/learn/flatness/) the plain tfjs ops run, exactly as before, and tfjs differentiates those.
 */
import * as tf from '@tensorflow/tfjs';
import { gemmGeometry } from './kernels/conv2d-backprop.js';

/** y = x·W + b, and y = relu(x·W + b): two names, because only the ReLU's gradient needs y. */
export const DENSE = 'FlatmeshDense';
export const DENSE_RELU = 'FlatmeshDenseRelu';
/** The gradients of a dense layer: dx = dyM·Wᵀ, dW = xᵀ·dyM, db = Σ_rows dyM (dyM: dy, ReLU-masked). */
export const DENSE_GRAD_X = 'FlatmeshDenseGradX';
export const DENSE_GRAD_W = 'FlatmeshDenseGradW';
export const DENSE_GRAD_B = 'FlatmeshDenseGradB';
/**
 * relu(conv2d(x, W, stride 1) + b) for NHWC images, and a ReLU's gradient from its output (dy where
 * y > 0): the conv's own gradients then run as the patched Conv2DBackpropInput/Filter kernels.
 */
export const CONV_RELU = 'FlatmeshConv2DRelu';
export const RELU_GRAD = 'FlatmeshReluGrad';
/** Mean over the batch of softmax cross-entropy, and its gradient in the logits. */
export const SOFTMAX_XENT = 'FlatmeshSoftmaxXent';
export const SOFTMAX_XENT_GRAD = 'FlatmeshSoftmaxXentGrad';

export const LAYER_KERNELS = [
  DENSE,
  DENSE_RELU,
  DENSE_GRAD_X,
  DENSE_GRAD_W,
  DENSE_GRAD_B,
  CONV_RELU,
  RELU_GRAD,
  SOFTMAX_XENT,
  SOFTMAX_XENT_GRAD,
] as const;

interface Engine {
  state: { gradientDepth: number };
  isTapeOn(): boolean;
}
const engine = () => tf.engine() as unknown as Engine;

/**
 * Whether `kernel` runs here: registered on the current backend, float32 inputs, and at most one
 * tape recording (see the module comment).
 */
function fusedHere(kernel: string, ...ts: tf.Tensor[]): boolean {
  return (
    engine().state.gradientDepth <= 1 &&
    tf.getKernel(kernel, tf.getBackend()) !== undefined &&
    ts.every((t) => t.dtype === 'float32')
  );
}

/** relu(x·W + b) (relu false: x·W + b); x [batch, in], W [in, out], b [out]. */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, relu: boolean): tf.Tensor2D {
  const kernel = relu ? DENSE_RELU : DENSE;
  if (!fusedHere(kernel, x, w, b) || x.shape[1] !== w.shape[0] || b.shape[0] !== w.shape[1]) {
    // tfjs's fused product: one kernel without a tape; under a tape it runs matMul, add, relu.
    return tf.fused.matMul({
      a: x,
      b: w,
      bias: b,
      activation: relu ? 'relu' : 'linear',
    }) as tf.Tensor2D;
  }
  return tf.engine().runKernel(kernel, { x, w, b }) as tf.Tensor2D;
}

/**
 * relu(conv2d(x, W, 1, pad) + b); x [batch, h, w, in], W [fh, fw, in, out], b [out]. The fused
 * kernel covers stride-1 convolutions whose every window overlaps the image (all of the zoo's).
 */
export function conv2dRelu(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  b: tf.Tensor1D,
  pad: 'same' | 'valid',
): tf.Tensor4D {
  const fused =
    fusedHere(CONV_RELU, x, w, b) &&
    x.shape[3] === w.shape[2] &&
    b.shape[0] === w.shape[3] &&
    gemmGeometry(tf.backend_util.computeConv2DInfo(x.shape, w.shape, 1, 1, pad)) !== undefined;
  if (!fused) return tf.relu(tf.add(tf.conv2d(x, w, 1, pad), b)) as tf.Tensor4D;
  return tf.engine().runKernel(CONV_RELU, { x, w, b }, { pad }) as tf.Tensor4D;
}

/**
 * Mean over the batch of softmax cross-entropy between one-hot (or soft) `labels` and `logits`,
 * both [batch, classes]: tf.losses.softmaxCrossEntropy(labels, logits) with its default reduction.
 */
export function softmaxCrossEntropyMean(labels: tf.Tensor2D, logits: tf.Tensor2D): tf.Scalar {
  if (!fusedHere(SOFTMAX_XENT, labels, logits) || logits.rank !== 2) {
    return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
  }
  return tf.engine().runKernel(SOFTMAX_XENT, { labels, logits }) as tf.Scalar;
}

/** The gradients run untaped; a tape here would mean the module's premise broke. */
function untaped(kernel: string): void {
  if (engine().isTapeOn()) {
    throw new Error(`${kernel}: its gradient has no gradient (fused layers are first order only)`);
  }
}

function run(kernel: string, inputs: tf.NamedTensorMap): tf.Tensor {
  return tf.engine().runKernel(kernel, inputs) as tf.Tensor;
}

let registered = false;

/** Registers the gradients of the fused layer kernels (for every backend). Idempotent. */
export function registerLayerGradients(): void {
  if (registered) return;
  registered = true;
  for (const relu of [false, true]) {
    const kernelName = relu ? DENSE_RELU : DENSE;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x', 'w'],
      outputsToSave: [relu],
      gradFunc: (dy, saved) => {
        untaped(kernelName);
        const [x, w, y] = saved as tf.Tensor[];
        // With the ReLU the kernels mask dy where y = 0; without it they get no y.
        const masked: tf.NamedTensorMap = relu
          ? { dy: dy as tf.Tensor, y: y! }
          : { dy: dy as tf.Tensor };
        return {
          x: () => run(DENSE_GRAD_X, { ...masked, w: w! }),
          w: () => run(DENSE_GRAD_W, { ...masked, x: x! }),
          b: () => run(DENSE_GRAD_B, masked),
        };
      },
    });
  }
  tf.registerGradient({
    kernelName: CONV_RELU,
    inputsToSave: ['x', 'w'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      untaped(CONV_RELU);
      const [x, w, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      // The masked gradient once, for all three (the backward pass's scope frees it).
      const g = run(RELU_GRAD, { dy: dy as tf.Tensor, y });
      const conv = { strides: 1, pad: (attrs as { pad: string }).pad, dataFormat: 'NHWC' };
      const kernel = (name: string, inputs: tf.NamedTensorMap, shape: Record<string, number[]>) =>
        tf.engine().runKernel(name, inputs, { ...conv, ...shape } as unknown as tf.NamedAttrMap);
      return {
        x: () => kernel('Conv2DBackpropInput', { dy: g, filter: w }, { inputShape: x.shape }),
        w: () => kernel('Conv2DBackpropFilter', { x, dy: g }, { filterShape: w.shape }),
        b: () => tf.sum(g, [0, 1, 2]),
      } as Record<string, () => tf.Tensor>;
    },
  });
  tf.registerGradient({
    kernelName: SOFTMAX_XENT,
    inputsToSave: ['labels', 'logits'],
    gradFunc: (dy, saved) => {
      untaped(SOFTMAX_XENT);
      const [labels, logits] = saved as [tf.Tensor2D, tf.Tensor2D];
      const d = dy as tf.Scalar;
      return {
        logits: () => run(SOFTMAX_XENT_GRAD, { dy: d, labels, logits }),
        // ∂/∂labels of the mean loss: -log softmax(logits) / batch (never needed in training).
        labels: () => tf.mul(tf.logSoftmax(logits), tf.div(tf.neg(d), logits.shape[0])),
      };
    },
  });
}
