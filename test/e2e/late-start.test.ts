/**
 * A late host across machines: three hosts as network namespaces joined by a bridge (veth pairs),
 * the run prepared with `flatmesh roster` (a fresh run id and pre-shared key) and each node started
 * with `flatmesh node` inside its namespace. Node 2 starts 12 s after the others, and its link to
 * node 0 drops 20% of the packets each way (iptables' statistic match: this kernel has no netem).
 * Done when node 2 joins at the current round and exchanges models within 2 rounds of starting:
 * its first round is the round its neighbours were in when it started (within one: news of
 * their rounds is a round old by the time it arrives), and within its first two rounds it mixes a
 * neighbour's model (receives) and a neighbour mixes its model in the same round (sends).
 * Heartbeats cross the hosts both ways.
 *
 * Needs root, `ip` (iproute2) and `iptables` (.ci/run installs them; CI runs as root). Traffic
 * stays on the addresses of the namespaces this test creates; they are deleted when it ends,
 * however it ends, and every process it started is stopped.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RoundRecord } from '../../src/node/metrics.js';
import { PSK_FILE } from '../../src/run/roster.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const LATE_MS = 12_000;
/** The whole test gives up after this (a bound, not a performance target). */
const BOUND_MS = 240_000;

const tag = `fm${process.pid % 100_000}`;
const hub = `${tag}-hub`;
const nsOf = (i: number) => `${tag}-n${i}`;
const subnet = `10.${200 + (process.pid % 50)}.${process.pid % 250}`;
const ipOf = (i: number) => `${subnet}.${i + 1}`;
const NODES = [0, 1, 2];

const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function deleteNamespaces(): void {
  for (const ns of [hub, ...NODES.map(nsOf)]) {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      // not there (never made, or already gone)
    }
  }
}

/** A hub namespace with a bridge; each node's namespace has one veth on it, with its address. */
function buildNetwork(): void {
  deleteNamespaces();
  sh('ip', ['netns', 'add', hub]);
  sh('ip', ['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', hub, 'link', 'set', 'br0', 'up']);
  for (const i of NODES) {
    const ns = nsOf(i);
    const port = `${tag}h${i}`;
    sh('ip', ['netns', 'add', ns]);
    sh('ip', [
      'link',
      'add',
      port,
      'netns',
      hub,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns,
    ]);
    sh('ip', ['-n', hub, 'link', 'set', port, 'master', 'br0', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ipOf(i)}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  // 20% loss each way on the link between node 0 and the late node 2.
  for (const [chain, dir] of [
    ['INPUT', '-s'],
    ['OUTPUT', '-d'],
  ] as const) {
    sh('ip', [
      'netns',
      'exec',
      nsOf(0),
      'iptables',
      '-A',
      chain,
      dir,
      ipOf(2),
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      '0.2',
      '-j',
      'DROP',
    ]);
  }
}

function prerequisites(): string | undefined {
  if (process.getuid?.() !== 0) return 'it must run as root (network namespaces, iptables)';
  for (const tool of ['ip', 'iptables']) {
    try {
      sh('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is missing (.ci/run installs iproute2, iptables)`;
    }
  }
  return undefined;
}

const records = (file: string): RoundRecord[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as RoundRecord];
          } catch {
            return []; // a line being written
          }
        })
    : [];

describe('a late host across machines (network namespaces, 20% loss on one link, PSK)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flatmesh-late-'));
  const children: ChildProcess[] = [];
  const cleanUp = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    deleteNamespaces();
  };
  // However the test process ends, the namespaces go with it.
  process.once('exit', cleanUp);
  after(() => {
    cleanUp();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a node started 12 s late joins and exchanges models within 2 rounds of starting', async () => {
    const missing = prerequisites();
    assert.equal(missing, undefined, `the late-start test cannot run: ${missing}`);
    buildNetwork();
    const out = join(dir, 'cluster');
    const roster = spawnCli([
      'roster',
      '--nodes',
      '3',
      '--hosts',
      NODES.map(ipOf).join(','),
      '--base-port',
      '4100',
      '--out',
      out,
    ]);
    assert.equal(await roster.code, 0, roster.stderr());
    assert.ok(
      existsSync(join(out, PSK_FILE)),
      'a run across hosts gets a pre-shared key by default',
    );
    const exp = join(dir, 'exp.yaml');
    writeFileSync(
      exp,
      [
        'nodes: 3',
        'run: { rounds: 100000, seed: 4 }',
        'topology: { graph: complete, sampler: vanilla }',
        'model: { hidden: [16] }',
        'train: { localSteps: 2 }',
        'gossip: { deadlineMs: 3000 }',
        'eval: { every: 100000 }',
        'checkpoint: { every: 100000 }',
        'backend: wasm',
        `network: { psk: ${join(out, PSK_FILE)} }`,
        '',
      ].join('\n'),
    );
    const start = (i: number) => {
      const p = spawnCli(
        [
          'node',
          '--config',
          exp,
          '--id',
          String(i),
          '--dir',
          join(out, 'nodes', String(i)),
          '--roster',
          join(out, 'roster.json'),
        ],
        nsOf(i),
      );
      children.push(p.child);
      return p;
    };
    const t0 = Date.now();
    const nodes = [start(0), start(1)];
    const file = (i: number) => join(out, 'nodes', String(i), 'metrics.jsonl');
    const neighbours = () => [0, 1].map((i) => records(file(i)));
    // 12 s after the others are running: on a crowded machine loading the code alone can take
    // longer than that, and a node started before the run began would not be late at all.
    while (!neighbours().every((rs) => rs.length > 0)) {
      assert.ok(Date.now() - t0 < BOUND_MS, `nodes 0 and 1 ran no round in ${BOUND_MS / 1000} s`);
      await sleepOrExit(250, nodes);
    }
    await sleepOrExit(LATE_MS, nodes);
    nodes.push(start(2));
    let late: RoundRecord[] = [];
    for (;;) {
      late = records(file(2)).slice(0, 2);
      // Node 2 has had its two rounds, and its neighbours a few more (heartbeats trail frames).
      const last = late[1]?.round;
      if (last !== undefined && neighbours().every((rs) => rs.some((r) => r.round > last + 3)))
        break;
      const exited = nodes.find((n) => n.child.exitCode !== null);
      assert.equal(exited, undefined, `a node exited early: ${exited?.stderr()}`);
      assert.ok(Date.now() - t0 < BOUND_MS, `no verdict within ${BOUND_MS / 1000} s`);
      await sleep(250);
    }
    for (const n of nodes) n.child.kill('SIGTERM');
    await Promise.all(nodes.map((n) => Promise.race([n.code, sleep(20_000)])));
    const [first, second] = late as [RoundRecord, RoundRecord];
    const others = neighbours();
    const show = JSON.stringify(
      late.map((r) => ({ round: r.round, catchUp: r.catchUp, heard: r.heard, m: r.messages })),
    );
    const around = others.flatMap((rs, i) =>
      rs
        .filter((r) => Math.abs(r.round - second.round) <= 3)
        .map((r) => `${i}@${r.round}:${r.heard.join('+')}`),
    );
    const why = `node 2: ${show}; neighbours ${around.join(' ')}`;

    // It joins at the current round: the round its neighbours were working on when it began its
    // first round (the one after the last they had finished), give or take the one round its news
    // of them may be old.
    const began = first.time - first.phases.roundMs;
    const finished = Math.max(
      ...others.flatMap((rs) => rs.filter((r) => r.time <= began).map((r) => r.round)),
    );
    assert.ok(finished >= 1, `the others ran rounds before node 2 started: ${why}`);
    assert.ok(first.catchUp, `node 2 caught up in its first round: ${why}`);
    assert.ok(
      first.round >= finished,
      `node 2 began at round ${first.round}, its neighbours had finished round ${finished}: ${why}`,
    );
    // It receives: it mixes a neighbour's model in one of its first two rounds.
    assert.ok(
      late.some((r) => r.heard.length > 0),
      `node 2 heard nobody in its first two rounds: ${why}`,
    );
    // It sends: a neighbour mixes node 2's model in one of those two rounds. Its first frames
    // reach neighbours that had written it off (silent since they started) a little after they
    // closed its first round: that news makes them wait for its next frame (NodeRuntime.news), not
    // its `join` on gossipsub, whose mesh to a peer that just connected forms about a second later.
    const mixedIt = others.flat().filter((r) => r.round <= second.round && r.heard.includes(2));
    assert.ok(
      mixedIt.length > 0,
      `no neighbour mixed node 2's model in its rounds ${first.round}..${second.round}: ${why}`,
    );
    // Heartbeats cross hosts both ways (catch-up and waivers depend on them).
    const hb = (rs: RoundRecord[]) => new Set(rs.flatMap((r) => r.heartbeatsFrom ?? []));
    const all2 = records(file(2));
    assert.deepEqual([...hb(all2)].sort(), [0, 1], 'node 2 received heartbeats from 0 and 1');
    for (const [i, rs] of others.entries()) {
      assert.ok(hb(rs).has(2), `node ${i} received heartbeats from node 2`);
    }
  });
});

/** The flatmesh command from source, optionally inside a network namespace. */
function spawnCli(args: string[], ns?: string) {
  const node = [process.execPath, '--import', 'tsx', MAIN, ...args];
  const [cmd, ...rest] = ns ? ['ip', 'netns', 'exec', ns, ...node] : node;
  const child = spawn(cmd!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d) => {
    err = (err + String(d)).slice(-4000);
  });
  const code = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { child, code, stderr: () => err };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait `ms`, failing at once if one of the nodes exits meanwhile. */
async function sleepOrExit(
  ms: number,
  nodes: { code: Promise<number | null>; stderr: () => string }[],
) {
  const exit = Promise.race(nodes.map((n, i) => n.code.then((c) => ({ i, c }))));
  const r = await Promise.race([sleep(ms).then(() => undefined), exit]);
  assert.equal(r, undefined, r && `node ${r.i} exited ${r.c}: ${nodes[r.i]!.stderr()}`);
}
