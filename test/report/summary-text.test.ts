/** The end-of-run lines a terminal shows: what went wrong or was worked around is on them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyCounts, type RunSummary } from '../../src/report/records.js';
import { formatSummary } from '../../src/report/summary-text.js';

// The fields formatSummary reads (a full RunSummary holds the config and per-node outcomes too).
const summary = (extra: Partial<RunSummary>): RunSummary =>
  ({
    completed: true,
    nodes: 8,
    rounds: 40,
    wallSeconds: 14.6,
    mode: 'processes',
    meanAccuracy: 0.9,
    meanSwaAccuracy: null,
    accuracyOfAverageModel: null,
    messages: { ...emptyCounts(), sent: 10, delivered: 10 },
    restarts: 0,
    faults: {},
    ...extra,
  }) as RunSummary;

describe('end-of-run summary text', () => {
  it('shows catch-ups and the rounds they skipped, and restarts', () => {
    const text = formatSummary(summary({ restarts: 1, catchUps: 2, roundsCaughtUp: 9 }));
    assert.match(text, /messages: sent 10, .* \| restarts 1 \| catch-ups 2 \(9 rounds skipped\)/);
  });

  it('says nothing of catch-ups in a run that had none', () => {
    assert.doesNotMatch(formatSummary(summary({ catchUps: 0, roundsCaughtUp: 0 })), /catch-up/);
  });
});
