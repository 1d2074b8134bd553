import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { topologyDraw, topologyGen, topologyInspect } from '../../src/cli/topology.js';
import { parseTopology } from '../../src/topology/format.js';
import { generateTopology } from '../../src/topology/generators.js';
import { matchaReference, shipped } from './helpers.js';

describe('flatmesh topology commands', () => {
  it('inspect --json reproduces the MATCHA reference figures on matcha-er-8', async () => {
    const ref = matchaReference();
    const r = JSON.parse(
      await topologyInspect({ file: shipped('matcha-er-8.json'), budget: 0.5, json: true }),
    );
    assert.equal(r.nodes, 8);
    assert.equal(r.edges, 12);
    assert.equal(r.matchings, 5);
    assert.equal(r.matchingsSource, 'file');
    assert.ok(Math.abs(r.lambda2 - ref.vanilla_dpsgd_all_edges.laplacian_eigenvalues[1]!) < 1e-8);
    assert.ok(Math.abs(r.vanilla.alpha - 2 / 7) < 1e-12);
    assert.ok(Math.abs(r.vanilla.rho - 0.6537772) < 1e-6);
    assert.equal(r.matcha.budget, 0.5);
    assert.ok(Math.abs(r.matcha.lambda2Expected - 0.5612025) < 1e-5);
    assert.ok(Math.abs(r.matcha.alpha - 0.3964298) < 1e-4);
    assert.ok(Math.abs(r.matcha.rho - 0.643975) < 1e-4);
    assert.equal(r.matcha.probabilities.length, 5);
    const expected = ref.matchings.reduce((s, m, j) => s + m.length * ref.probabilities[j]!, 0);
    assert.ok(Math.abs(r.matcha.expectedEdgesPerRound - expected) < 1e-4);
    assert.ok(Math.abs(r.matcha.expectedMessagesPerRound - 2 * expected) < 1e-4);
    assert.equal(r.vanilla.messagesPerRound, 24);
  });

  it('inspect prints a readable report', async () => {
    const text = await topologyInspect({ file: shipped('ring-16.json'), budget: 0.5 });
    assert.match(text, /nodes 16 {3}edges 16 {3}max degree 2 {3}matchings 2 \(computed\)/);
    assert.match(text, /MATCHA at budget Cb = 0\.5/);
    assert.match(text, /alpha 0\.650\d+/);
    assert.match(text, /expected messages\/round 16\.00 vs 32 \(50\.0%\)/);
  });

  it('draw writes an SVG with one colour per matching and the probabilities in the legend', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-draw-'));
    const out = join(dir, 'graph.svg');
    const msg = await topologyDraw({ file: shipped('matcha-er-8.json'), budget: 0.5, out });
    assert.match(msg, /wrote .*graph\.svg: 8 nodes, 12 edges, 5 matchings/);
    const svg = readFileSync(out, 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.equal((svg.match(/<line x1=/g) ?? []).length, 12 + 5);
    const colours = new Set([...svg.matchAll(/<g stroke="(#[0-9A-F]{6})"/g)].map((m) => m[1]));
    assert.equal(colours.size, 5);
    assert.match(svg, /M0 \(4\): p = 0\.9837/);
    assert.match(svg, /M1 \(2\): p = 0\.0000/);
    assert.match(svg, /stroke-dasharray/);
    assert.ok((await topologyDraw({ file: shipped('torus-4x4.json') })).startsWith('<svg'));
  });

  it('gen writes a valid topology file that records how to regenerate it', async () => {
    const text = await topologyGen({ kind: 'er', n: 20, p: 0.3, seed: 5 });
    const json = JSON.parse(text);
    assert.deepEqual(json.generator, { kind: 'erdos-renyi', seed: 5, params: { n: 20, p: 0.3 } });
    assert.equal(json.name, 'erdos-renyi-20');
    assert.deepEqual(
      parseTopology(json).edges,
      generateTopology('erdos-renyi', { n: 20, p: 0.3 }, 5).edges,
    );
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-gen-'));
    writeFileSync(join(dir, 'g.json'), text);
    const r = JSON.parse(await topologyInspect({ file: join(dir, 'g.json'), json: true }));
    assert.equal(r.nodes, 20);
    assert.equal(r.matcha.budget, 0.5);
  });
});
