import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { contourSegments } from '../../src/report/flatness.js';
import { emptyCounts, type MessageCounts, type RoundRecord } from '../../src/report/records.js';
import {
  accuracySeries,
  bands,
  consensusSeries,
  faultTimeline,
  finalAccuracies,
  linkDelivery,
  lossiestEdges,
  matchingActivity,
  messageFates,
  phaseTimes,
} from '../../src/report/series.js';

const counts = (c: Partial<MessageCounts>): MessageCounts => ({ ...emptyCounts(), ...c });

function rec(node: number, round: number, r: Partial<RoundRecord> = {}): RoundRecord {
  return {
    node,
    round,
    time: 0,
    lr: 0.1,
    trainLoss: 1,
    swaCount: 0,
    phases: {
      trainMs: 10,
      exchangeMs: 6,
      waitMs: 4,
      mixMs: 1,
      evalMs: 0,
      checkpointMs: 0,
      roundMs: 17,
    },
    neighbours: [],
    heard: [],
    disagreement: null,
    bytesSent: 0,
    bytesReceived: 0,
    messages: emptyCounts(),
    byNeighbour: {},
    rejectedBy: {},
    streamResets: {},
    faults: {},
    rssMB: 0,
    numTensors: 0,
    ...r,
  };
}

describe('report reducers', () => {
  it('bands: mean, min and max over the nodes with a value, per round', () => {
    const records = [
      [rec(0, 0, { accuracy: 0.5 }), rec(0, 1), rec(0, 2, { accuracy: 0.75 })],
      [rec(1, 0, { accuracy: 0.25 }), rec(1, 1), rec(1, 2, { accuracy: 1 })],
      [rec(2, 0, { accuracy: 0.75 })],
    ];
    assert.deepEqual(
      bands(records, (r) => r.accuracy),
      [
        { round: 0, mean: 0.5, min: 0.25, max: 0.75, n: 3 },
        { round: 2, mean: 0.875, min: 0.75, max: 1, n: 2 },
      ],
    );
  });

  it('a round a restarted node repeated counts once, with its last record', () => {
    const records = [[rec(0, 0, { accuracy: 0.1 }), rec(0, 1), rec(0, 0, { accuracy: 0.3 })]];
    assert.deepEqual(
      bands(records, (r) => r.accuracy),
      [{ round: 0, mean: 0.3, min: 0.3, max: 0.3, n: 1 }],
    );
  });

  it('accuracy series: SWA collection rounds and the average model at the last round', () => {
    const records = [
      [
        rec(0, 0),
        rec(0, 1, { swaCount: 1 }),
        rec(0, 2, { swaCount: 1 }),
        rec(0, 3, { swaCount: 2 }),
      ],
      [
        rec(1, 0),
        rec(1, 1, { swaCount: 1 }),
        rec(1, 2, { swaCount: 1 }),
        rec(1, 3, { swaCount: 2, swaAccuracy: 0.5 }),
      ],
    ];
    const summary = { rounds: 4, accuracyOfAverageModel: 0.625 } as never;
    const s = accuracySeries(records, summary);
    assert.deepEqual(s.swaCollections, [1, 3]);
    assert.deepEqual(s.averageModel, { round: 3, accuracy: 0.625 });
    assert.deepEqual(s.swaAccuracy, [{ round: 3, mean: 0.5, min: 0.5, max: 0.5, n: 1 }]);
    assert.deepEqual(
      s.trainLoss.map((b) => b.n),
      [2, 2, 2, 2],
    );
    assert.equal(accuracySeries(records).averageModel, null);
  });

  it('consensus distance skips nodes that heard nobody', () => {
    const records = [
      [rec(0, 0, { disagreement: 0.5 })],
      [rec(1, 0, { disagreement: null })],
      [rec(2, 0, { disagreement: 0.25 })],
    ];
    assert.deepEqual(consensusSeries(records), [
      { round: 0, mean: 0.375, min: 0.25, max: 0.5, n: 2 },
    ]);
  });

  it('message fates per round, summed over nodes, zero counts left out', () => {
    const records = [
      [rec(0, 0, { messages: counts({ sent: 3, delivered: 2, dropped: 1 }) })],
      [rec(1, 0, { messages: counts({ sent: 2, delivered: 2, missing: 1, late: 2 }) })],
    ];
    assert.deepEqual(messageFates(records), [
      { round: 0, fate: 'delivered', count: 4 },
      { round: 0, fate: 'dropped', count: 1 },
      { round: 0, fate: 'missing', count: 1 },
      { round: 0, fate: 'late', count: 2 },
    ]);
  });

  it('per-link delivery and the lossiest undirected edges', () => {
    const records = [
      [
        rec(0, 0, {
          byNeighbour: {
            '1': counts({ sent: 1, delivered: 1 }),
            '2': counts({ sent: 1, dropped: 1 }),
          },
        }),
        rec(0, 1, {
          byNeighbour: { '1': counts({ sent: 1, dropped: 1 }), '2': counts({ received: 1 }) },
        }),
      ],
      [rec(1, 0, { byNeighbour: { '0': counts({ sent: 1, failed: 1 }) } })],
      [rec(2, 1, { byNeighbour: { '0': counts({ sent: 2, delivered: 2 }) } })],
    ];
    assert.deepEqual(linkDelivery(records), [
      { from: 0, to: 1, sent: 2, delivered: 1, rate: 0.5 },
      { from: 0, to: 2, sent: 1, delivered: 0, rate: 0 },
      { from: 1, to: 0, sent: 1, delivered: 0, rate: 0 },
      { from: 2, to: 0, sent: 2, delivered: 2, rate: 1 },
    ]);
    assert.deepEqual(lossiestEdges(records), [
      { edge: '0-1', a: 0, b: 1, sent: 3, lost: 2, rate: 2 / 3 },
      { edge: '0-2', a: 0, b: 2, sent: 3, lost: 1, rate: 1 / 3 },
    ]);
  });

  it('matching activity: observed share of rounds next to the planned probability', () => {
    const records = [
      [
        rec(0, 0, { neighbours: [1] }),

        rec(0, 2, { neighbours: [1, 3] }),
      ],
      [rec(1, 0), rec(1, 1), rec(1, 2), rec(1, 3, { neighbours: [0] })],
      [],
      [rec(3, 0, { neighbours: [] }), rec(3, 1, { neighbours: [0] })],
    ];
    const plan = {
      matchings: [[[0, 1] as const], [[0, 3] as const]],
      probabilities: [0.5, 0.25],
    };
    assert.deepEqual(matchingActivity(records, plan), [
      // Node 0 left no record of round 1: node 1's and node 3's records tell.
      { matching: 0, probability: 0.5, observed: 0.75, rounds: 4 },
      { matching: 1, probability: 0.25, observed: 2 / 3, rounds: 3 },
    ]);
  });

  it('phase times: exchange without its wait, mean per node; round times per node-round', () => {
    const slow = rec(1, 0, {
      phases: {
        trainMs: 40,
        exchangeMs: 10,
        waitMs: 2,
        mixMs: 2,
        evalMs: 4,
        checkpointMs: 2,
        roundMs: 58,
      },
    });
    const t = phaseTimes([[rec(0, 0), rec(0, 1)], [slow]]);
    assert.deepEqual(
      t.perNode.filter((p) => p.node === 0).map((p) => [p.phase, p.ms]),
      [
        ['train', 10],
        ['exchange', 2],
        ['wait', 4],
        ['mix', 1],
        ['eval', 0],
        ['checkpoint', 0],
      ],
    );
    assert.deepEqual(
      t.perNode.filter((p) => p.node === 1).map((p) => p.ms),
      [40, 8, 2, 2, 4, 2],
    );
    assert.deepEqual(t.perRound, [
      { node: 0, round: 0, ms: 17 },
      { node: 0, round: 1, ms: 17 },
      { node: 1, round: 0, ms: 58 },
    ]);
  });

  it('fault timeline: planned faults as spans, counted faults per round', () => {
    const cfg = parseExperiment({
      nodes: 4,
      run: { rounds: 10 },
      faults: {
        crashes: [{ node: 1, round: 3, restartAfter: 2 }],
        stragglers: [{ node: 2, factor: 3 }],
        partitions: [
          {
            groups: [
              [0, 1],
              [2, 3],
            ],
            from: 5,
            to: 7,
          },
        ],
      },
    });
    const records = [
      [rec(0, 4, { faults: { loss: 2, partition: 1 } }), rec(0, 5, { faults: { partition: 1 } })],
    ];
    const marks = faultTimeline(records, cfg);
    assert.deepEqual(
      marks.map((m) => [m.kind, m.node, m.from, m.to, m.count]),
      [
        ['crash', 1, 3, 3, 0],
        ['down', 1, 4, 5, 0],
        ['partition', 0, 5, 6, 0],
        ['partition', 1, 5, 6, 0],
        ['partition', 2, 5, 6, 0],
        ['partition', 3, 5, 6, 0],
        ['straggler', 2, 0, 9, 0],
        ['loss', 0, 4, 4, 2],
      ],
    );
  });

  it('final accuracies from the summary, else the last evaluated record', () => {
    const records = [
      [rec(0, 0, { accuracy: 0.5 }), rec(0, 1)],
      [rec(1, 0, { accuracy: 0.25, swaAccuracy: 0.5 })],
    ];
    const summary = { perNode: [{ id: 0, accuracy: 0.75, swaAccuracy: null }] } as never;
    assert.deepEqual(finalAccuracies(records, summary), [
      { node: 0, accuracy: 0.75, swaAccuracy: null },
      { node: 1, accuracy: 0.25, swaAccuracy: 0.5 },
    ]);
  });

  it('contour lines of a grid (marching squares)', () => {
    // z = x on a 2x2 grid: the level 0.5 is the vertical line x = 0.5.
    const segs = contourSegments(
      [0, 1],
      [0, 1],
      [
        [0, 1],
        [0, 1],
      ],
      [0.5],
    );
    assert.deepEqual(segs, [{ level: 0.5, x: 0.5, y: 0, x2: 0.5, y2: 1 }]);
  });
});
