import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ModelMismatchError } from '../../src/errors.js';
import {
  createModel,
  modelSignature,
  paramLayout,
  readFlat,
  writeFlat,
} from '../../src/learn/index.js';

describe('models', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('cnn-fedavg has exactly 797,962 parameters on 32x32x3 with 10 classes', () => {
    const m = createModel({ kind: 'cnn-fedavg' }, [32, 32, 3], 10, 0);
    assert.equal(m.size, 797_962);
    assert.deepEqual(
      m.params.map((p) => [p.name, p.kind, p.variable.shape]),
      [
        ['conv1.weight', 'weight', [5, 5, 3, 64]],
        ['conv1.bias', 'bias', [64]],
        ['conv2.weight', 'weight', [5, 5, 64, 64]],
        ['conv2.bias', 'bias', [64]],
        ['fc1.weight', 'weight', [1600, 384]],
        ['fc1.bias', 'bias', [384]],
        ['fc2.weight', 'weight', [384, 192]],
        ['fc2.bias', 'bias', [192]],
        ['fc3.weight', 'weight', [192, 10]],
        ['fc3.bias', 'bias', [10]],
      ],
    );
    const logits = tf.tidy(() => m.logits(tf.zeros([2, 32, 32, 3])));
    assert.deepEqual(logits.shape, [2, 10]);
    logits.dispose();
    m.dispose();
  });

  it('builds every kind with the right logits shape on 8x8 and 28x28 inputs', () => {
    for (const shape of [
      [8, 8, 1],
      [28, 28, 1],
    ]) {
      for (const spec of [
        { kind: 'logreg' as const },
        { kind: 'mlp' as const },
        { kind: 'mlp' as const, hidden: [32] },
        { kind: 'cnn-small' as const },
      ]) {
        const m = createModel(spec, shape, 10, 1);
        const before = tf.memory().numTensors;
        const out = tf.tidy(() => m.logits(tf.ones([3, ...shape])));
        assert.deepEqual(out.shape, [3, 10], `${spec.kind} on ${shape}`);
        assert.ok(out.dataSync().every(Number.isFinite));
        out.dispose();
        assert.equal(tf.memory().numTensors, before);
        m.dispose();
      }
    }
    const mlp = createModel({ kind: 'mlp' }, [28, 28, 1], 10, 0);
    assert.equal(mlp.size, 784 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10);
    mlp.dispose();
  });

  it('initializes deterministically from the seed, within the PyTorch default bounds', () => {
    const a = createModel({ kind: 'mlp', hidden: [16] }, [8, 8, 1], 10, 5);
    const b = createModel({ kind: 'mlp', hidden: [16] }, [8, 8, 1], 10, 5);
    const c = createModel({ kind: 'mlp', hidden: [16] }, [8, 8, 1], 10, 6);
    assert.deepEqual(readFlat(a), readFlat(b));
    assert.notDeepEqual(readFlat(a), readFlat(c));
    const layout = paramLayout(a);
    const flat = readFlat(a);
    const fc1 = layout[0]!;
    const w = flat.subarray(fc1.offset, fc1.offset + fc1.size);
    const bound = 1 / Math.sqrt(64);
    assert.ok(w.every((v) => Math.abs(v) <= bound));
    assert.ok(Math.max(...w) > 0.9 * bound, 'uses the whole range');
    for (const m of [a, b, c]) m.dispose();
  });

  it('rejects bad specs with the field named', () => {
    assert.throws(() => createModel({ kind: 'mlp', hidden: [0] }, [4], 3, 0), /model\.hidden\[0\]/);
    assert.throws(() => createModel({ kind: 'mlp' }, [4], 1, 0), /model\.classes/);
    assert.throws(() => createModel({ kind: 'cnn-small' }, [64], 10, 0), /model\.inputShape/);
    assert.throws(() => createModel({ kind: 'cnn-fedavg' }, [8, 8, 1], 10, 0), /model\.inputShape/);
  });
});

describe('flat parameter vectors', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('round-trips, copies in both directions and reports the layout', () => {
    const m = createModel({ kind: 'cnn-small' }, [8, 8, 1], 10, 2);
    const flat = readFlat(m);
    assert.equal(flat.length, m.size);
    const layout = paramLayout(m);
    assert.equal(layout.at(-1)!.offset + layout.at(-1)!.size, m.size);
    assert.deepEqual(
      layout.map((s) => s.kind),
      m.params.map((p) => p.kind),
    );
    // readFlat is a copy: changing it does not change the model.
    flat[0] = 123;
    assert.notEqual(readFlat(m)[0], 123);
    // writeFlat copies: reusing the buffer afterwards does not change the model.
    const next = flat.map((_, i) => i * 1e-6);
    writeFlat(m, next);
    next.fill(7);
    const back = readFlat(m);
    assert.equal(back[10], Math.fround(10 * 1e-6));
    assert.equal(back[m.size - 1], Math.fround((m.size - 1) * 1e-6));
    // Per-tensor offsets address the right variable.
    const slot = layout[2]!;
    assert.equal(m.params[2]!.variable.dataSync()[0], back[slot.offset]);
    m.dispose();
  });

  it('throws ModelMismatchError on a length mismatch', () => {
    const m = createModel({ kind: 'logreg' }, [8, 8, 1], 10, 0);
    assert.throws(() => writeFlat(m, new Float32Array(m.size - 1)), ModelMismatchError);
    m.dispose();
  });

  it('gives equal signatures to equal architectures only', () => {
    const a = createModel({ kind: 'mlp' }, [8, 8, 1], 10, 1);
    const b = createModel({ kind: 'mlp' }, [8, 8, 1], 10, 99);
    const c = createModel({ kind: 'mlp', hidden: [200, 100] }, [8, 8, 1], 10, 1);
    const d = createModel({ kind: 'mlp' }, [28, 28, 1], 10, 1);
    assert.match(modelSignature(a), /^[0-9a-f]{16}$/);
    assert.equal(modelSignature(a), modelSignature(b));
    assert.notEqual(modelSignature(a), modelSignature(c));
    assert.notEqual(modelSignature(a), modelSignature(d));
    for (const m of [a, b, c, d]) m.dispose();
  });
});
