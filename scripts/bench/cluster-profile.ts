/**
 * Where a cluster's node processes spend their CPU: aggregates the V8 CPU profiles of a run
 * (`--cpu-prof` in every node process, see `npm run bench -- cluster --profile`) into the share
 * of each part of a node-round and the functions with the most self time.
 *
 *   npm run bench -- cluster-profile DIR [--top 25]
 *
 * DIR is a cluster bench's `--keep` directory (profiles in DIR/prof, records in DIR/run). Only
 * the steady rounds count: samples from the moment every node finished round 0 to the moment the
 * first node finished the round before the last (the one the bench evaluates), the window of the
 * cluster bench's CPU figure. V8 stamps samples with the monotonic clock; the records carry wall
 * time; the two are tied through this process's own clocks (same machine, same CLOCK_MONOTONIC).
 *
 * Shares are of sampled time, which on a crowded machine includes time a process waited for a
 * core; with every process in the same state that spreads evenly, so shares approximate CPU
 * shares. Parts are found by module path, so profile the plain modules (FLATMESH_NO_BUNDLE=1;
 * the bench's --profile does): in the bundle every function is in dist/flatmesh.cjs.
 *
 * Prints one JSON line (suite "cluster", kind "profile"): the parts, then the top functions by
 * self time, each with its share in percent.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundRecord } from '../../src/node/metrics.js';
import { round } from './lib/stats.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * The parts of a node-round, first match wins, each tested against every frame of a sample's
 * stack (so "training" holds the tfjs kernels it calls, and "signature checks" the crypto that
 * gossipsub calls). Evaluation is reported apart and left out of the shares.
 */
const PARTS: readonly { part: string; leaf?: boolean; frame: (f: CallFrame) => boolean }[] = [
  { part: 'evaluation', frame: (f) => /^evaluate(Flat)?$/.test(f.functionName) },
  { part: 'training', frame: (f) => inSrc(f, 'learn/trainer') },
  {
    part: 'signature checks (gossipsub)',
    frame: (f) => f.url.includes('@libp2p/crypto') || inSrc(f, 'net/libp2p/verify-cache'),
  },
  { part: 'gossipsub (other)', frame: (f) => f.url.includes('libp2p-gossipsub') },
  {
    part: 'noise (encryption)',
    frame: (f) => f.url.includes('libp2p-noise') || inSrc(f, 'net/libp2p/noise-'),
  },
  { part: 'yamux', frame: (f) => f.url.includes('libp2p-yamux') },
  { part: 'mixing', frame: (f) => inSrc(f, 'gossip/') },
  { part: 'weights wire (frames in/out)', frame: (f) => inSrc(f, 'net/') },
  { part: 'records, checkpoints, progress', frame: (f) => inSrc(f, 'report/') || inSrc(f, 'run/') },
  { part: 'round engine (node/)', frame: (f) => inSrc(f, 'node/') },
  {
    part: 'socket I/O',
    frame: (f) =>
      /^node:(net|internal\/stream_base_commons)$/.test(f.url) || /stream-to-it/.test(f.url),
  },
  {
    part: 'libp2p (other)',
    frame: (f) => /@libp2p|libp2p\/|\/it-|uint8arraylist|@multiformats/.test(f.url),
  },
  // V8 running the queue itself (its frame is below nearly every stack: only as the leaf).
  { part: 'microtask queue', leaf: true, frame: (f) => f.functionName === 'runMicrotasks' },
  { part: 'garbage collector', frame: (f) => f.functionName === '(garbage collector)' },
  { part: 'tfjs (outside training)', frame: (f) => f.url.includes('@tensorflow') },
];

function inSrc(f: CallFrame, path: string): boolean {
  return f.url.includes(`/src/${path}`);
}

export interface ProfileSummary {
  processes: number;
  windowS: number;
  sampledS: number;
  evaluationS: number;
  parts: Record<string, number>;
  top: { fn: string; selfPct: number }[];
}

/**
 * Aggregate every .cpuprofile of `dir` over [fromMs, toMs] (wall clock, epoch ms): parts and the
 * `top` functions by self time, in percent of the sampled time outside evaluation.
 */
export function aggregateProfiles(
  dir: string,
  fromMs: number,
  toMs: number,
  top = 25,
): ProfileSummary {
  // Wall clock -> CLOCK_MONOTONIC in µs, V8's sample clock (process.hrtime reads the same clock).
  const monoMinusWallUs = Number(process.hrtime.bigint() / 1000n) - Date.now() * 1000;
  const from = fromMs * 1000 + monoMinusWallUs;
  const to = toMs * 1000 + monoMinusWallUs;
  const parts = new Map<string, number>();
  const self = new Map<string, number>();
  let sampled = 0;
  let evaluation = 0;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  for (const file of files) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    // Each node's part, computed once (samples repeat nodes).
    const partOf = new Map<number, string>();
    const classify = (id: number): string => {
      let part = partOf.get(id);
      if (part !== undefined) return part;
      const frames: CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        frames.push(byId.get(at)!.callFrame);
      }
      part = PARTS.find((r) => (r.leaf ? r.frame(frames[0]!) : frames.some(r.frame)))?.part;
      part ??= 'other';
      partOf.set(id, part);
      return part;
    };
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i] ?? 0;
      if (t < from || t > to) continue;
      const node = byId.get(p.samples[i]!)!;
      if (node.callFrame.functionName === '(idle)') continue;
      // A sample stands for the time until the next one.
      const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
      const part = classify(node.id);
      if (part === 'evaluation') {
        evaluation += ms;
        continue;
      }
      sampled += ms;
      parts.set(part, (parts.get(part) ?? 0) + ms);
      const key = frameName(node.callFrame);
      self.set(key, (self.get(key) ?? 0) + ms);
    }
  }
  const pct = (ms: number) => round((100 * ms) / (sampled || 1), 1);
  return {
    processes: files.length,
    windowS: round((toMs - fromMs) / 1000, 1),
    sampledS: round(sampled / 1000, 1),
    evaluationS: round(evaluation / 1000, 1),
    parts: Object.fromEntries([...parts].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, pct(v)])),
    top: [...self]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, ms]) => ({ fn, selfPct: pct(ms) })),
  };
}

/** `name path:line`, the path from its package or from src/ (wasm functions keep their index). */
function frameName(f: CallFrame): string {
  const where = f.url
    .replace(/.*node_modules\//, '')
    .replace(/.*\/(src|dist)\//, '$1/')
    .replace(/^file:\/\//, '');
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}:${f.lineNumber + 1}` : ''}`;
}

/** The steady window of a run directory: every node done with round 0 -> first node done with `last - 1`. */
export function steadyWindow(runDir: string): { fromMs: number; toMs: number } {
  const nodesDir = join(runDir, 'nodes');
  const records = readdirSync(nodesDir).flatMap((n) =>
    readFileSync(join(nodesDir, n, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RoundRecord),
  );
  const last = Math.max(...records.map((r) => r.round));
  const at = (k: number) => records.filter((r) => r.round === k).map((r) => r.time);
  return { fromMs: Math.max(...at(0)), toMs: Math.min(...at(last - 1)) };
}

export async function run(args: string[]): Promise<void> {
  const dir = args.find((a) => !a.startsWith('--'));
  if (!dir) throw new Error('usage: npm run bench -- cluster-profile DIR [--top N]');
  const i = args.indexOf('--top');
  const top = i >= 0 ? Number(args[i + 1]) : 25;
  const { fromMs, toMs } = steadyWindow(join(dir, 'run'));
  const s = aggregateProfiles(join(dir, 'prof'), fromMs, toMs, top);
  process.stdout.write(`${JSON.stringify({ suite: 'cluster', kind: 'profile', ...s })}\n`);
}
