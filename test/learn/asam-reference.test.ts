import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { crossEntropy, oneHot } from '../../src/learn/loss.js';
import { createOptimizer } from '../../src/learn/optim/optimizer.js';
import { packageRoot } from '../../src/paths.js';

type Mat = number[][];
type Params = Record<'fc1.weight' | 'fc2.weight', Mat> & Record<'fc1.bias' | 'fc2.bias', number[]>;
interface Step {
  loss_at_w: number;
  grad_at_w: Params;
  eps: Params;
  w_perturbed: Params;
  loss_at_w_plus_eps: number;
  grad_at_w_plus_eps: Params;
  w_new: Params;
}
interface Reference {
  inputs: { X: Mat; y: number[]; init_params: Params };
  hyper: { rho: number; eta: number; lr: number; momentum: number; weight_decay: number };
  steps: Step[];
  final_params: Params;
}

const ref = JSON.parse(
  readFileSync(join(packageRoot(), 'test', 'fixtures', 'asam_two_steps.json'), 'utf8'),
) as Reference;
const NAMES = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'] as const;

/** Torch layout W[out][in] -> tfjs kernel [in][out], flattened row-major. */
function toTfjs(name: (typeof NAMES)[number], p: Params): number[] {
  if (name.endsWith('.bias')) return p[name as 'fc1.bias'];
  const w = p[name as 'fc1.weight'];
  const out: number[] = [];
  const rows = w.length;
  const cols = w[0]!.length;
  for (let i = 0; i < cols; i++) for (let o = 0; o < rows; o++) out.push(w[o]![i]!);
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.max(...expected.map(Math.abs), 1e-12);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    // Relative error < 1e-5 against the element, or against the tensor's scale for values that
    // are (nearly) zero, where a relative error is meaningless.
    const err = Math.abs(a - e) / Math.max(Math.abs(e), scale * 1e-2);
    assert.ok(err < 1e-5, `${what}[${i}]: got ${a}, expected ${e} (rel err ${err})`);
  }
}

describe('ASAM against the reference implementation', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('reproduces eps, perturbed weights, the gradient there and the new weights', () => {
    const init = ref.inputs.init_params;
    const shapes = { 'fc1.weight': [3, 4], 'fc1.bias': [4], 'fc2.weight': [4, 2], 'fc2.bias': [2] };
    const vars = NAMES.map((n) => tf.variable(tf.tensor(toTfjs(n, init), shapes[n]), true));
    const params = NAMES.map((name, i) => ({
      name,
      kind: name.endsWith('.bias') ? ('bias' as const) : ('weight' as const),
      variable: vars[i]!,
    }));
    const x = tf.tensor2d(ref.inputs.X);
    const y = oneHot(ref.inputs.y, 2);
    const loss = () =>
      tf.tidy(() => {
        const h = tf.relu(tf.add(tf.matMul(x, vars[0]!), vars[1]!));
        return crossEntropy(tf.add(tf.matMul(h, vars[2]!), vars[3]!) as tf.Tensor2D, y);
      });
    const seen: {
      eps: number[][];
      perturbed: number[][];
      gradAtW: number[][];
      grad: number[][];
      loss: number;
    }[] = [];
    const h = ref.hyper;
    const opt = createOptimizer(
      { kind: 'asam', momentum: h.momentum, weightDecay: h.weight_decay, rho: h.rho, eta: h.eta },
      params,
      {
        onPerturbed: (inner) =>
          seen.push({
            gradAtW: inner.gradAtW.map((t) => Array.from(t.dataSync())),
            eps: inner.eps.map((t) => Array.from(t.dataSync())),
            perturbed: inner.perturbed.map((t) => Array.from(t.dataSync())),
            grad: inner.gradAtPerturbed.map((t) => Array.from(t.dataSync())),
            loss: inner.lossAtPerturbed.dataSync()[0]!,
          }),
      },
    );
    ref.steps.forEach((s, k) => {
      const l = opt.step(loss, h.lr);
      assertClose([l], [s.loss_at_w], `step ${k} loss at w`);
      const got = seen[k]!;
      assertClose([got.loss], [s.loss_at_w_plus_eps], `step ${k} loss at w+eps`);
      NAMES.forEach((n, i) => {
        assertClose(got.gradAtW[i]!, toTfjs(n, s.grad_at_w), `step ${k} grad at w ${n}`);
        assertClose(got.eps[i]!, toTfjs(n, s.eps), `step ${k} eps ${n}`);
        assertClose(got.perturbed[i]!, toTfjs(n, s.w_perturbed), `step ${k} w+eps ${n}`);
        assertClose(got.grad[i]!, toTfjs(n, s.grad_at_w_plus_eps), `step ${k} grad at w+eps ${n}`);
        assertClose(vars[i]!.dataSync(), toTfjs(n, s.w_new), `step ${k} new weights ${n}`);
      });
    });
    NAMES.forEach((n, i) =>
      assertClose(vars[i]!.dataSync(), toTfjs(n, ref.final_params), `final ${n}`),
    );
    opt.dispose();
    tf.dispose([x, y, ...vars]);
  });
});
