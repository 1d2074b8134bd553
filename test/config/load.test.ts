import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadExperiment, parseExperiment } from '../../src/config/index.js';
import { configProblems } from '../helpers/config-errors.js';

describe('experiment config', () => {
  it('fills every default from an empty object', () => {
    const c = parseExperiment({});
    assert.equal(c.nodes, 8);
    assert.equal(c.train.optimizer, 'asam');
    assert.equal(c.swa.start, 0.75);
    assert.equal(c.faults.loss.p, 0);
    assert.deepEqual(c.model.hidden, [200, 200]);
  });

  it('names the path and legal range of an out-of-range value', () => {
    const msgs = configProblems(() => parseExperiment({ faults: { loss: { p: 1.5 } } }));
    assert.deepEqual(msgs, ['faults.loss.p: must be between 0 and 1 (got 1.5)']);
  });

  it('reports every problem at once, including unknown fields and bad enums', () => {
    const msgs = configProblems(() =>
      parseExperiment({ nodes: 0, train: { optimizer: 'adam', lrr: 1 }, gossip: { codec: 'f64' } }),
    );
    assert.equal(msgs.length, 4, msgs.join('\n'));
    assert.ok(msgs.includes('nodes: must be an integer between 1 and 1024 (got 0)'));
    assert.ok(
      msgs.some((m) => m.startsWith("train.optimizer: must be one of 'sgd', 'sam', 'asam'")),
    );
    assert.ok(msgs.some((m) => m.startsWith('train.lrr: unknown field')));
    assert.ok(msgs.some((m) => m.startsWith('gossip.codec:')));
  });

  it('checks node indices in the fault plan against the node count', () => {
    const msgs = configProblems(() =>
      parseExperiment({ nodes: 4, faults: { crashes: [{ node: 9, round: 2 }] } }),
    );
    assert.deepEqual(msgs, ['faults.crashes[0].node: must be less than nodes (4) (got 9)']);
  });

  it('reads YAML files and applies --set and flag overrides in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-cfg-'));
    const file = join(dir, 'exp.yaml');
    writeFileSync(file, 'nodes: 4\ntrain:\n  lr: 0.1\n');
    const c = loadExperiment({
      file,
      set: ['train.lr=0.2', 'model.hidden=[64, 32]'],
      overrides: { nodes: 6 },
    });
    assert.equal(c.nodes, 6);
    assert.equal(c.train.lr, 0.2);
    assert.deepEqual(c.model.hidden, [64, 32]);
  });

  it('rejects a file that is not valid YAML with its name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'nodes: [1, 2\n');
    assert.throws(() => loadExperiment({ file }), /bad\.yaml: is not valid YAML/);
  });
});
