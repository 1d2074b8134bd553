/**
 * Live faults without processes: control requests are validated with the field and its legal range
 * named; the live fault plan applies partitions, loss, stragglers and byzantine behaviour from their
 * round on, with both ends of a link deciding the same; the dashboard server refuses control in
 * read-only mode, keeps Prometheus metrics from the round records, and tails node logs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { LiveFaultPlan } from '../../src/faults/live.js';
import { emptyCounts, type RoundRecord } from '../../src/node/metrics.js';
import { startDashboard, tailLines } from '../../src/report/dashboard/server.js';
import { EventHistory, parseJsonLines } from '../../src/run/events.js';
import { parseControlAction } from '../../src/run/live-control.js';

const faults = parseExperiment({}).faults;

describe('control actions', () => {
  it('parse every kind', () => {
    assert.deepEqual(parseControlAction({ kind: 'kill', node: 2, restart: 'now' }, 6), {
      kind: 'kill',
      node: 2,
      restart: 'now',
    });
    assert.deepEqual(
      parseControlAction({ kind: 'kill', node: 0, restart: 'after', afterRounds: 3 }, 6),
      { kind: 'kill', node: 0, restart: 'after', afterRounds: 3 },
    );
    assert.deepEqual(
      parseControlAction({ kind: 'partition', groups: [[0, 1], [2]], rounds: 4 }, 3),
      { kind: 'partition', groups: [[0, 1], [2]], rounds: 4 },
    );
    assert.deepEqual(parseControlAction({ kind: 'loss', p: 0.5, link: { from: 1, to: 0 } }, 2), {
      kind: 'loss',
      p: 0.5,
      link: { from: 1, to: 0 },
    });
    assert.equal(
      parseControlAction({ kind: 'byzantine', node: 1, behaviour: 'noise', sigma: 2 }, 2).kind,
      'byzantine',
    );
  });

  it('name the bad field and its legal range', () => {
    const bad = (body: unknown, nodes: number, msg: RegExp) =>
      assert.throws(
        () => parseControlAction(body, nodes),
        (e: Error) => e.name === 'ConfigError' && msg.test(e.message),
      );
    bad(
      { kind: 'kill', node: 9, restart: 'now' },
      6,
      /^node: must be an integer between 0 and 5 \(got 9\)$/,
    );
    bad({ kind: 'nuke' }, 6, /^kind: must be one of kill, restart, partition/);
    bad(
      { kind: 'kill', node: 1, restart: 'soon' },
      6,
      /^restart: must be one of now, never, after/,
    );
    bad({ kind: 'loss', p: 1.5 }, 6, /^p: must be a number between 0 and 1 \(got 1.5\)$/);
    bad(
      {
        kind: 'partition',
        groups: [
          [0, 1],
          [1, 2],
        ],
        rounds: 2,
      },
      6,
      /groups.1.0: is in both/,
    );
    bad({ kind: 'partition', groups: [[0]], rounds: 2 }, 6, /^groups: must be two lists/);
    bad({ kind: 'straggler', node: 1, factor: 0.5 }, 6, /^factor: must be a number between 1/);
    bad({ kind: 'loss', p: 0.1, link: { from: 1, to: 1 } }, 6, /^link: must join two different/);
    bad('kill', 6, /^action: must be a JSON object/);
  });
});

describe('live fault plan', () => {
  it('cuts a partition for its rounds, and a one-group partition heals it', () => {
    const plan = new LiveFaultPlan(faults, 1, 4);
    plan.add({
      kind: 'partition',
      groups: [
        [0, 1],
        [2, 3],
      ],
      from: 5,
      to: 10,
    });
    assert.equal(plan.messageFate(1, 2, 4), 'deliver');
    assert.equal(plan.messageFate(1, 2, 5), 'partition');
    assert.equal(plan.messageFate(2, 1, 5), 'partition');
    assert.equal(plan.messageFate(0, 1, 5), 'deliver');
    assert.deepEqual(plan.partitionAt(6), [
      [0, 1],
      [2, 3],
    ]);
    plan.add({ kind: 'partition', groups: [[0, 1, 2, 3]], from: 7, to: 10 });
    assert.equal(plan.messageFate(1, 2, 6), 'partition');
    assert.equal(plan.messageFate(1, 2, 7), 'deliver');
    assert.equal(plan.messageFate(1, 2, 10), 'deliver');
  });

  it('loses messages from its round on, the same on both ends and in a replay', () => {
    const a = new LiveFaultPlan(faults, 3, 4);
    const b = new LiveFaultPlan(faults, 3, 4);
    const loss = { kind: 'loss' as const, p: 0.5, from: 2 };
    a.add(loss);
    b.add(loss);
    const fates = (p: LiveFaultPlan) =>
      Array.from({ length: 200 }, (_, k) => p.messageFate(k % 4, (k + 1) % 4, k));
    assert.deepEqual(fates(a), fates(b));
    const lost = fates(a).filter((f) => f === 'loss').length;
    assert.ok(lost > 70 && lost < 130, `${lost} of 200 lost at p=0.5`);
    assert.equal(a.messageFate(0, 1, 1), 'deliver');
    // One link at p=1; the latest action wins (every link back to 0 later).
    a.add({ kind: 'loss', p: 0, from: 300 });
    a.add({ kind: 'loss', p: 1, from: 300, link: { from: 0, to: 1 } });
    a.add({ kind: 'loss', p: 0, from: 305 });
    assert.equal(a.messageFate(0, 1, 301), 'loss');
    assert.equal(a.messageFate(1, 0, 301), 'deliver');
    assert.equal(a.messageFate(0, 1, 306), 'deliver');
  });

  it('makes a node a straggler or byzantine from its round on, and ends it', () => {
    const plan = new LiveFaultPlan(faults, 1, 4);
    plan.roundDone(2, 3);
    plan.add({ kind: 'straggler', node: 2, factor: 4, from: 6 });
    plan.add({
      kind: 'byzantine',
      node: 2,
      behaviour: 'sign-flip',
      scale: 1,
      sigma: 1,
      from: 6,
    });
    assert.equal(plan.stragglerFactor(2), 1);
    assert.equal(plan.byzantine(2), undefined);
    plan.roundDone(2, 5);
    assert.equal(plan.stragglerFactor(2), 4);
    assert.equal(plan.byzantine(2)?.behaviour, 'sign-flip');
    assert.equal(plan.stragglerFactor(1), 1);
    plan.add({ kind: 'byzantine', node: 2, behaviour: 'honest', scale: 1, sigma: 1, from: 8 });
    plan.roundDone(2, 7);
    assert.equal(plan.byzantine(2), undefined);
  });
});

const record = (node: number, round: number): RoundRecord => ({
  node,
  round,
  time: Date.now(),
  lr: 0.1,
  trainLoss: 1,
  accuracy: 0.5 + node / 10,
  swaCount: 0,
  phases: {
    trainMs: 10,
    exchangeMs: 5,
    waitMs: 1,
    mixMs: 1,
    evalMs: 2,
    checkpointMs: 0,
    roundMs: 19,
  },
  neighbours: [1 - node],
  heard: [1 - node],
  disagreement: 0.01,
  bytesSent: 4000,
  bytesReceived: 4000,
  messages: { ...emptyCounts(), sent: 1, delivered: 1, received: 1 },
  byNeighbour: {},
  rejectedBy: {},
  streamResets: {},
  faults: { loss: 1 },
  rssMB: 100,
  numTensors: 10,
});

describe('dashboard server', () => {
  it('serves the page, events, metrics and logs; refuses control when read-only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-dash-'));
    mkdirSync(join(dir, 'nodes', '1'), { recursive: true });
    writeFileSync(join(dir, 'nodes', '1', 'node.log'), 'a\nb\nc\n');
    const history = new EventHistory();
    history.push({ type: 'round', time: 1, record: record(0, 0) });
    history.push({ type: 'round', time: 2, record: record(1, 0) });
    let called = 0;
    const d = await startDashboard({
      source: history,
      runDir: () => dir,
      readonly: true,
      control: () => called++,
    });
    try {
      assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}$/);
      const get = (path: string) => fetch(new URL(path, d.url));
      assert.match(await (await get('/')).text(), /flatmesh dashboard/);
      assert.equal((await get('/uplot.js')).status, 200);
      const metrics = await (await get('/metrics')).text();
      assert.match(metrics, /flatmesh_node_round\{node="1"\} 0/);
      assert.match(metrics, /flatmesh_node_accuracy\{node="1"\} 0.6/);
      assert.match(metrics, /flatmesh_messages_total\{node="0",fate="delivered"\} 1/);
      assert.match(metrics, /flatmesh_phase_seconds_total\{node="0",phase="train"\} 0.01/);
      assert.deepEqual(await (await get('/api/log?node=1')).json(), {
        node: 1,
        lines: ['a', 'b', 'c'],
      });
      const res = await fetch(new URL('/api/control', d.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-flatmesh-token': d.token },
        body: JSON.stringify({ kind: 'heal' }),
      });
      assert.equal(res.status, 403);
      assert.equal(called, 0);
      // SSE: the history first, then live events.
      const ac = new AbortController();
      const stream = await fetch(new URL('/api/events', d.url), { signal: ac.signal });
      const reader = stream.body!.getReader();
      let text = '';
      history.push({ type: 'note', time: 3, message: 'live one' });
      while (!text.includes('live one'))
        text += new TextDecoder().decode((await reader.read()).value);
      ac.abort();
      const events = text
        .split('\n\n')
        .filter(Boolean)
        .map((b) => JSON.parse(b.replace(/^data: /, '')) as { type: string });
      assert.deepEqual(
        events.map((e) => e.type),
        ['round', 'round', 'note'],
      );
    } finally {
      await d.close();
    }
  });

  it('reads whole JSON lines and the tail of a log', () => {
    assert.deepEqual(parseJsonLines('{"a":1}\n{"a":2}\n{"a":'), [{ a: 1 }, { a: 2 }]);
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-tail-'));
    writeFileSync(join(dir, 'f'), Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n'));
    assert.deepEqual(tailLines(join(dir, 'f'), 2), ['line 98', 'line 99']);
    assert.deepEqual(tailLines(join(dir, 'missing'), 2), []);
  });
});
