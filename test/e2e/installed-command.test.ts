/**
 * The installed command (`flatmesh`, i.e. dist/src/cli/start.js running the one-file bundle with its
 * code cache) behaves exactly like the source it was built from. Needs a build (`npm ci` and
 * `npm run build` make one).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseExperiment } from '../../src/config/index.js';
import { simulate } from '../../src/run/simulate.js';
import { until } from '../net/helpers.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const START = join(ROOT, 'dist', 'src', 'cli', 'start.js');
const BUNDLE = join(ROOT, 'dist', 'flatmesh.cjs');

const experiment = {
  nodes: 4,
  run: { rounds: 4, seed: 3 },
  topology: { graph: 'ring', budget: 0.5 },
  model: { hidden: [16] },
  train: { localSteps: 10, lr: 0.3 },
  eval: { every: 2 },
  // Four rounds are too few for an SWA phase: its last round would run at swa.lr2.
  swa: { enabled: false },
  faults: { loss: { p: 0.2, mode: 'notify' } },
  backend: 'wasm',
};

function writeExperiment(dir: string): string {
  const file = join(dir, 'exp.json');
  writeFileSync(file, JSON.stringify(experiment));
  return file;
}

describe('the installed command (bundle + code cache)', () => {
  it('is built', () => {
    assert.ok(existsSync(START) && existsSync(BUNDLE), `no build at ${ROOT}dist: npm run build`);
  });

  it('simulates the same run, figure for figure, as the source', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-bundle-sim-'));
    const { stdout } = await run(process.execPath, [
      START,
      'sim',
      '--config',
      writeExperiment(dir),
      '--json',
    ]);
    const bundled = JSON.parse(stdout);
    const source = await simulate(parseExperiment(experiment));
    assert.equal(bundled.meanAccuracy, source.meanAccuracy);
    assert.equal(bundled.meanSwaAccuracy, source.meanSwaAccuracy);
    assert.equal(bundled.accuracyOfAverageModel, source.accuracyOfAverageModel);
    assert.deepEqual(bundled.messages, source.messages);
    assert.deepEqual(
      bundled.perNode.map((n: { accuracy: number }) => n.accuracy),
      source.perNode.map((n) => n.accuracy),
    );
    // The first run of a build leaves the code cache the next runs start from.
    assert.ok(existsSync(`${BUNDLE}.cache`));
  });

  it('stops every node on Ctrl-C, mid-run, and exits with 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-bundle-sigint-'));
    const out = join(dir, 'run');
    const child = spawn(
      process.execPath,
      [
        START,
        'launch',
        '--config',
        writeExperiment(dir),
        '--rounds',
        '500',
        '--out',
        out,
        '--quiet',
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // Running: the roster is out and node 0 has finished a round.
    await until(
      () => existsSync(join(out, 'nodes', '0', 'metrics.jsonl')),
      'a first round record',
      60_000,
    );
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    const left = execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(out));
    assert.deepEqual(left, []);
  });

  it('launches real node processes that run the bundle too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-bundle-launch-'));
    const out = join(dir, 'run');
    await run(process.execPath, [
      START,
      'launch',
      '--config',
      writeExperiment(dir),
      '--out',
      out,
      '--quiet',
    ]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.completed, true);
    assert.equal(summary.perNode.length, 4);
    for (const n of summary.perNode) assert.equal(n.roundsCompleted, 4, `node ${n.id}`);
    assert.ok(summary.meanAccuracy > 0.2, `mean accuracy ${summary.meanAccuracy}`);
  });
});
