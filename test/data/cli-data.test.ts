import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { dataFetch, dataInspect, progressReporter } from '../../src/cli/data.js';
import { parseDatasetSpec } from '../../src/data/load.js';
import { ConfigError } from '../../src/errors.js';

describe('flatmesh data inspect', () => {
  it('prints a table of node sizes and class histograms', async () => {
    const out = await dataInspect({ dataset: 'digits', partition: 'dirichlet:0', nodes: 10 });
    const lines = out.split('\n');
    assert.match(
      lines[0]!,
      /digits: 1438 train \/ 359 test, 10 classes; partition dirichlet:0 over 10 nodes/,
    );
    const header = lines.findIndex((l) => /node\s+size\s+classes\s+c0/.test(l));
    assert.ok(header > 0);
    const rows = lines.slice(header + 1);
    assert.equal(rows.length, 10);
    for (const r of rows) assert.equal(r.trim().split(/\s+/)[2], '1', `one class: ${r}`);
  });

  it('gives the same as JSON', async () => {
    const j = JSON.parse(
      await dataInspect({ dataset: 'digits', partition: 'iid', nodes: 4, seed: 2, json: true }),
    );
    assert.equal(j.partition, 'iid');
    assert.equal(j.nodes.length, 4);
    assert.equal(
      j.nodes.reduce((s: number, n: { size: number }) => s + n.size, 0),
      1438,
    );
    for (const n of j.nodes)
      assert.equal(
        n.histogram.reduce((a: number, b: number) => a + b, 0),
        n.size,
      );
  });

  it('rejects bad flags with ConfigErrors', async () => {
    await assert.rejects(
      dataInspect({ dataset: 'mnist', partition: 'iid', nodes: 4 }),
      ConfigError,
    );
    await assert.rejects(
      dataInspect({ dataset: 'digits', partition: 'dirichlet', nodes: 4 }),
      /partition/,
    );
    await assert.rejects(dataInspect({ dataset: 'digits', partition: 'iid', nodes: 0 }), /nodes/);
  });
});

describe('flatmesh data fetch', () => {
  it('has nothing to fetch for built-in data sets and rejects unknown ones', async () => {
    assert.match(await dataFetch({ dataset: 'digits' }), /embedded/);
    assert.match(await dataFetch({ dataset: 'synthetic' }), /generated/);
    await assert.rejects(dataFetch({ dataset: 'imagenet' }), ConfigError);
  });

  it('prints a few plain progress lines when stderr is not a terminal', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const report = progressReporter(out);
    for (let i = 0; i <= 1000; i++)
      report({ phase: 'download x', done: i * 1000, total: 1_000_000, unit: 'bytes' });
    for (let i = 0; i <= 6; i++) report({ phase: 'decode', done: i, total: 6, unit: 'items' });
    report.end();
    const lines = text.trim().split('\n');
    assert.ok(lines.length >= 4 && lines.length <= 12, text);
    assert.match(lines[0]!, /^download x: 0%/);
    assert.ok(lines.some((l) => /^download x: 100%/.test(l)));
    assert.ok(lines.some((l) => /^decode: 100% 6 \/ 6/.test(l)));
  });

  it('draws a bar on a terminal', () => {
    const out = Object.assign(new PassThrough(), { isTTY: true });
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const report = progressReporter(out);
    report({ phase: 'download x', done: 500_000, total: 1_000_000, unit: 'bytes' });
    report.end();
    assert.match(text, /\rdownload x \[#{15}\.{15}\]\s+50%/);
  });
});

describe('parseDatasetSpec', () => {
  it('parses dataset flags', () => {
    assert.deepEqual(parseDatasetSpec('digits'), { name: 'digits' });
    assert.deepEqual(parseDatasetSpec('fashion-mnist:6000'), {
      name: 'fashion-mnist',
      limit: 6000,
    });
    assert.deepEqual(parseDatasetSpec('cifar10'), { name: 'cifar10' });
    assert.deepEqual(parseDatasetSpec('synthetic:0.5,1'), {
      name: 'synthetic',
      alpha: 0.5,
      beta: 1,
    });
    assert.throws(() => parseDatasetSpec('cifar10:0'), ConfigError);
    assert.throws(() => parseDatasetSpec('synthetic:a,b'), ConfigError);
  });
});
