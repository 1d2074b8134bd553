/**
 * End-to-end: heartbeats over the gossipsub control topic reach every node of a real launch,
 * including the nodes a node has no connection to. Catch-up and the waiver of a neighbour whose
 * heartbeat says it is behind depend on them. In a ring of 5 each node dials only its two
 * neighbours, so the two nodes across the ring are heard only through the others' relays.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { launch } from '../../src/run/launcher.js';
import { START_TIMEOUT } from './helpers.js';

const NODES = 5;
const ROUNDS = 16;

const records = (out: string, node: number): RoundRecord[] =>
  readFileSync(join(out, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RoundRecord);

describe('heartbeats (real processes)', () => {
  it('every node hears every other node, neighbour or not, through the run', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-heartbeats-'));
    const cfg = parseExperiment({
      nodes: NODES,
      topology: { graph: 'ring', sampler: 'vanilla' },
      model: { hidden: [16] },
      train: { localSteps: 2 },
      swa: { enabled: false },
      eval: { every: 1000 },
      // Paced rounds (a few tenths of a second each), so the run lasts long enough for gossipsub
      // to learn the others' subscriptions whatever the machine's load.
      faults: { delay: { ms: 300 } },
      run: { rounds: ROUNDS, seed: 3 },
      backend: 'wasm',
    });
    const s = await launch(cfg, { out, progress: false, startTimeoutMs: START_TIMEOUT });
    assert.equal(s.completed, true);
    for (let i = 0; i < NODES; i++) {
      const rs = records(out, i);
      const from = new Set(rs.flatMap((r) => r.heartbeatsFrom ?? []));
      const others = Array.from({ length: NODES }, (_, j) => j).filter((j) => j !== i);
      assert.deepEqual(
        [...from].sort(),
        others,
        `node ${i} heard heartbeats from every other node`,
      );
      // Each other node sends one a round. Those of the first rounds may go before gossipsub has
      // learned who subscribes (and the last ones come after the last record): at least half.
      const total = rs.reduce((n, r) => n + (r.heartbeats ?? 0), 0);
      assert.ok(
        total >= (others.length * ROUNDS) / 2,
        `node ${i} received ${total} heartbeats of ${others.length * ROUNDS} sent to it`,
      );
      // And they keep coming: every other node is heard in the second half of the run.
      const late = new Set(
        rs.filter((r) => r.round >= ROUNDS / 2).flatMap((r) => r.heartbeatsFrom ?? []),
      );
      assert.deepEqual([...late].sort(), others, `node ${i} still hears everyone late in the run`);
    }
  });
});
