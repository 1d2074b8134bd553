/**
 * Shared helpers for the simulator-level fault tests: a small seeded experiment on digits, the
 * message-fate identities every run must satisfy, and a per-round weights table.
 */
import assert from 'node:assert/strict';
import { type Experiment, parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import type { RunSummary } from '../../src/run/summary.js';

/** A small, fast experiment: digits, MLP [32], 5 local steps, SWA off unless asked. */
export function smallRun(over: Record<string, unknown>): Experiment {
  return parseExperiment({
    nodes: 8,
    run: { rounds: 20, seed: 1 },
    model: { hidden: [32] },
    train: { localSteps: 5 },
    eval: { every: 5 },
    swa: { enabled: false },
    ...over,
  });
}

/**
 * Every message's fate adds up, per record and in the summary: what a node sent was delivered,
 * dropped by a fault or failed; what the nodes delivered was received, late or rejected; in the
 * simulator (notify mode) a dropped message is a lost one on the other end.
 */
export function assertFatesAddUp(records: readonly RoundRecord[], s: RunSummary): void {
  for (const r of records) {
    const m = r.messages;
    assert.equal(m.sent, m.delivered + m.dropped + m.failed, `node ${r.node} round ${r.round}`);
    assert.equal(m.sent, r.neighbours.length);
    assert.equal(m.received, r.heard.length);
  }
  const t = s.messages;
  assert.equal(t.sent, t.delivered + t.dropped + t.failed);
  assert.equal(t.delivered, t.received + t.late + t.rejected);
  assert.equal(t.dropped, t.lost);
  const sum = (k: keyof RoundRecord['messages']) => records.reduce((a, r) => a + r.messages[k], 0);
  for (const k of Object.keys(t) as (keyof RoundRecord['messages'])[])
    assert.equal(sum(k), t[k], `summary.messages.${k} is the sum of the records`);
  const faults: Record<string, number> = {};
  for (const r of records)
    for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
  assert.deepEqual(faults, s.faults, 'summary.faults is the sum of the records');
}

/** Weights of every node after every round: table[round][node]. */
export class WeightsTable {
  readonly rows = new Map<number, Float32Array[]>();
  readonly hook = (node: number, round: number, x: Float32Array): void => {
    const row = this.rows.get(round) ?? [];
    row[node] = x;
    this.rows.set(round, row);
  };
  at(round: number, nodes: readonly number[]): Float32Array[] {
    const row = this.rows.get(round);
    return nodes.map((i) => {
      const x = row?.[i];
      assert.ok(x, `weights of node ${i} at round ${round}`);
      return x;
    });
  }
}

export const meanOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean final accuracy of the given nodes (the honest ones). */
export function accuracyOf(s: RunSummary, nodes: readonly number[]): number {
  const accs = s.perNode.filter((p) => nodes.includes(p.id)).map((p) => p.accuracy);
  assert.ok(accs.every((a) => a !== null));
  return meanOf(accs as number[]);
}
