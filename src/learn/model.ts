/**
 * Functional models over named parameters. A model is a list of `tf.Variable`s, each named and
 * marked `weight` or `bias` (ASAM scales weights only), plus a pure `logits(x)` function of them.
 * No tfjs-layers: a plain function over variables is the fastest training loop measured here and
 * gives the optimizers and the flat-vector codec direct access to every parameter.
 *
 *   const model = createModel({ kind: 'mlp', hidden: [200, 200] }, [28, 28, 1], 10, seed);
 *   const logits = tf.tidy(() => model.logits(x)); // x: [batch, 28, 28, 1] or [batch, 784]
 *   model.dispose();
 *
 * Kinds:
 * - `logreg`: one dense layer on the flattened input.
 * - `mlp`: dense + ReLU per hidden size (default 200-200), then a dense output layer.
 * - `cnn-small`: conv3x3(16, same) -> ReLU -> maxpool2 -> conv3x3(32, same) -> ReLU -> maxpool2 ->
 *   dense 128 -> ReLU -> dense classes. Sized for 8x8 and 28x28 grayscale; works for any HxWxC
 *   (pooling uses 'same' padding so odd sizes are fine).
 * - `cnn-fedavg`: the paper's CIFAR CNN (fedsam `models/cifar10/cnn.py`): conv5x5(64, valid) ->
 *   ReLU -> maxpool2 -> conv5x5(64, valid) -> ReLU -> maxpool2 -> dense 384 -> ReLU -> dense 192 ->
 *   ReLU -> dense classes; 797,962 parameters on 32x32x3 with 10 classes.
 *
 * Initialization (deterministic, from `Rng.from(seed, 'init')`, parameters drawn in order): the
 * PyTorch defaults for `nn.Linear` / `nn.Conv2d`, i.e. weights and biases uniform in
 * `[-1/sqrt(fan_in), 1/sqrt(fan_in)]` (kaiming_uniform with a = sqrt(5)), so results compare with
 * the reference code. Layouts are tfjs-native: dense kernel [in, out], conv filter [kh, kw, in, out].
 */
import * as tf from '@tensorflow/tfjs';
import { conv2dRelu, dense } from '../compute/layers.js';
import { Rng } from '../compute/rng.js';
import { ConfigError } from '../errors.js';

export type ModelSpec =
  | { kind: 'logreg' }
  | { kind: 'mlp'; hidden?: number[] }
  | { kind: 'cnn-small' }
  | { kind: 'cnn-fedavg' };

export type ParamKind = 'weight' | 'bias';

export interface ModelParam {
  readonly name: string;
  readonly kind: ParamKind;
  readonly variable: tf.Variable;
}

export interface Model {
  readonly spec: ModelSpec;
  readonly params: readonly ModelParam[];
  /** Total number of scalar parameters. */
  readonly size: number;
  /** Shape of one input sample, e.g. [28, 28, 1] or [d]. */
  readonly inputShape: readonly number[];
  readonly classes: number;
  /** Logits `[batch, classes]` for a batch `[batch, ...inputShape]` (or already flattened). */
  logits(x: tf.Tensor): tf.Tensor2D;
  /** Frees every variable. The model is unusable afterwards. */
  dispose(): void;
}

export const DEFAULT_MLP_HIDDEN: readonly number[] = [200, 200];

/** Builds a model with deterministic initial parameters. */
export function createModel(
  spec: ModelSpec,
  inputShape: readonly number[],
  classes: number,
  seed: number,
): Model {
  if (!Number.isInteger(classes) || classes < 2) {
    throw new ConfigError('model.classes', 'must be an integer >= 2', classes);
  }
  if (inputShape.length === 0 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ConfigError('model.inputShape', 'must be a non-empty list of positive integers', [
      ...inputShape,
    ]);
  }
  const b = new ParamBuilder(Rng.from(seed, 'init'));
  const shape = [...inputShape];
  let logits: (x: tf.Tensor) => tf.Tensor2D;
  switch (spec.kind) {
    case 'logreg':
      logits = buildMlp(b, shape, [], classes);
      break;
    case 'mlp': {
      const hidden = spec.hidden ?? [...DEFAULT_MLP_HIDDEN];
      hidden.forEach((h, i) => {
        if (!Number.isInteger(h) || h < 1) {
          throw new ConfigError(`model.hidden[${i}]`, 'must be a positive integer', h);
        }
      });
      logits = buildMlp(b, shape, hidden, classes);
      break;
    }
    case 'cnn-small':
      logits = buildCnn(b, shape, classes, {
        kernel: 3,
        filters: [16, 32],
        padding: 'same',
        dense: [128],
      });
      break;
    case 'cnn-fedavg':
      logits = buildCnn(b, shape, classes, {
        kernel: 5,
        filters: [64, 64],
        padding: 'valid',
        dense: [384, 192],
      });
      break;
    default: {
      const never: never = spec;
      throw new ConfigError(
        'model.kind',
        'must be one of logreg, mlp, cnn-small, cnn-fedavg',
        (never as { kind: unknown }).kind,
      );
    }
  }
  const params = b.params;
  const size = params.reduce((s, p) => s + p.variable.size, 0);
  let disposed = false;
  return {
    spec,
    params,
    size,
    inputShape: shape,
    classes,
    logits,
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const p of params) p.variable.dispose();
    },
  };
}

/** Collects parameters in creation order, drawing PyTorch-default uniform initial values. */
class ParamBuilder {
  readonly params: ModelParam[] = [];
  private static counter = 0;
  // Variable names must be unique in the tfjs engine; several models live in one process (the
  // simulator), so each builder gets its own prefix. Parameter names stay the logical ones.
  private readonly prefix = `flatmesh${ParamBuilder.counter++}`;

  constructor(private readonly rng: Rng) {}

  /** A weight/bias pair with bound 1/sqrt(fanIn) (PyTorch Linear/Conv2d defaults). */
  layer(
    name: string,
    weightShape: number[],
    fanIn: number,
    outputs: number,
  ): [tf.Variable, tf.Variable] {
    const bound = 1 / Math.sqrt(fanIn);
    return [
      this.add(`${name}.weight`, 'weight', weightShape, bound),
      this.add(`${name}.bias`, 'bias', [outputs], bound),
    ];
  }

  private add(name: string, kind: ParamKind, shape: number[], bound: number): tf.Variable {
    const n = shape.reduce((a, d) => a * d, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = (2 * this.rng.float() - 1) * bound;
    const variable = tf.tidy(() =>
      tf.variable(tf.tensor(values, shape, 'float32'), true, `${this.prefix}/${name}`),
    );
    this.params.push({ name, kind, variable });
    return variable;
  }
}

function flatSize(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** Dense layers with ReLU between them; the input is flattened. */
function buildMlp(
  b: ParamBuilder,
  inputShape: number[],
  hidden: readonly number[],
  classes: number,
): (x: tf.Tensor) => tf.Tensor2D {
  const layers = denseStack(b, flatSize(inputShape), hidden, classes, 0);
  const features = flatSize(inputShape);
  return (x) => runDense(layers, x.reshape([-1, features]) as tf.Tensor2D);
}

interface DenseLayer {
  w: tf.Variable;
  b: tf.Variable;
  relu: boolean;
}

function denseStack(
  b: ParamBuilder,
  inputs: number,
  hidden: readonly number[],
  classes: number,
  firstIndex: number,
): DenseLayer[] {
  const sizes = [...hidden, classes];
  const layers: DenseLayer[] = [];
  let fanIn = inputs;
  sizes.forEach((out, i) => {
    const [w, bias] = b.layer(`fc${firstIndex + i + 1}`, [fanIn, out], fanIn, out);
    layers.push({ w, b: bias, relu: i < sizes.length - 1 });
    fanIn = out;
  });
  return layers;
}

function runDense(layers: readonly DenseLayer[], x: tf.Tensor2D): tf.Tensor2D {
  let h = x;
  for (const l of layers) {
    // One kernel per layer forward and per gradient where the backend has them (wasm), else
    // tfjs's fused product (matmul + bias + relu in one op without a tape).
    h = dense(h, l.w as tf.Tensor2D, l.b as tf.Tensor1D, l.relu);
  }
  return h;
}

interface CnnConfig {
  kernel: number;
  filters: number[];
  padding: 'same' | 'valid';
  dense: number[];
}

function buildCnn(
  b: ParamBuilder,
  inputShape: number[],
  classes: number,
  cfg: CnnConfig,
): (x: tf.Tensor) => tf.Tensor2D {
  if (inputShape.length !== 3) {
    throw new ConfigError(
      'model.inputShape',
      'a CNN needs image inputs [height, width, channels]',
      inputShape,
    );
  }
  let [h, w, c] = inputShape as [number, number, number];
  const convs: { w: tf.Variable; b: tf.Variable }[] = [];
  cfg.filters.forEach((f, i) => {
    const [kw, kb] = b.layer(
      `conv${i + 1}`,
      [cfg.kernel, cfg.kernel, c, f],
      cfg.kernel * cfg.kernel * c,
      f,
    );
    convs.push({ w: kw, b: kb });
    if (cfg.padding === 'valid') {
      h -= cfg.kernel - 1;
      w -= cfg.kernel - 1;
    }
    if (h < 1 || w < 1) {
      throw new ConfigError(
        'model.inputShape',
        `too small for this CNN (${cfg.kernel}x${cfg.kernel} valid convolutions)`,
        inputShape,
      );
    }
    // maxpool 2, stride 2 ('valid' as in PyTorch MaxPool2d(2) for the paper's model; 'same' keeps
    // odd sizes usable for the small CNN).
    h = cfg.padding === 'valid' ? Math.floor(h / 2) : Math.ceil(h / 2);
    w = cfg.padding === 'valid' ? Math.floor(w / 2) : Math.ceil(w / 2);
    c = f;
  });
  const flat = h * w * c;
  const dense = denseStack(b, flat, cfg.dense, classes, 0);
  const [ih, iw, ic] = inputShape as [number, number, number];
  return (x) => {
    let t = x.reshape([-1, ih, iw, ic]) as tf.Tensor4D;
    for (const cv of convs) {
      // One kernel for conv, bias and ReLU where the backend has it (wasm), else the plain ops (not
      // tf.fused.conv2d: its gradient does not go through the registered Conv2D gradients, which
      // src/compute patches for the wasm backend).
      t = conv2dRelu(t, cv.w as tf.Tensor4D, cv.b as tf.Tensor1D, cfg.padding);
      t = tf.maxPool(t, 2, 2, cfg.padding);
    }
    return runDense(dense, t.reshape([-1, flat]) as tf.Tensor2D);
  };
}
