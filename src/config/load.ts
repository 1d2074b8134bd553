/**
 * Reading an experiment: file (YAML or JSON) -> overrides from flags -> schema (defaults, types,
 * ranges) -> cross-field checks. Every problem is reported at once, each with its path:
 *
 *   faults.loss.p: must be between 0 and 1 (got 1.5)
 *   faults.crashes[0].node: must be less than nodes (8) (got 9)
 *
 *   const cfg = loadExperiment({ file: 'exp.yaml', set: ['train.lr=0.1'], nodes: 16 });
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, ConfigErrors } from '../errors.js';
import { type Experiment, experimentSchema } from './schema.js';

export interface LoadOptions {
  /** Experiment file, `.yaml`/`.yml` or `.json`. */
  file?: string;
  /** `path.to.field=value` overrides (value parsed as YAML: numbers, booleans, lists). */
  set?: readonly string[];
  /** Direct overrides, applied after `set` (e.g. from named command-line flags). */
  overrides?: Record<string, unknown>;
}

export function loadExperiment(opts: LoadOptions = {}): Experiment {
  let raw: unknown = {};
  if (opts.file) raw = readExperimentFile(opts.file);
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(opts.file ?? '(experiment)', 'must be a mapping of fields', raw);
  }
  const obj = structuredClone(raw) as Record<string, unknown>;
  for (const s of opts.set ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError('--set', 'must look like path.to.field=value', s);
    setPath(obj, s.slice(0, eq), parseYaml(s.slice(eq + 1)));
  }
  for (const [path, value] of Object.entries(opts.overrides ?? {})) {
    if (value !== undefined) setPath(obj, path, value);
  }
  return parseExperiment(obj);
}

export function readExperimentFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, `cannot read experiment file: ${(e as Error).message}`);
  }
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(
      file,
      `is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    );
  }
}

/** Validate an experiment object: defaults filled in, every problem reported with its path. */
export function parseExperiment(input: unknown): Experiment {
  const r = experimentSchema.safeParse(input, { reportInput: true });
  if (!r.success) throw new ConfigErrors(r.error.issues.map(issueToError));
  const problems = crossFieldProblems(r.data);
  if (problems.length > 0) throw new ConfigErrors(problems);
  return r.data;
}

function issueToError(issue: z.core.$ZodIssue): ConfigError {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const where = path === '(experiment)' ? '' : `${path}.`;
    return new ConfigError(
      `${where}${issue.keys.join(', ')}`,
      'unknown field (check its spelling)',
    );
  }
  const input = (issue as { input?: unknown }).input;
  return new ConfigError(path, issue.message, input);
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(experiment)';
  let s = '';
  for (const p of path)
    s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

function crossFieldProblems(cfg: Experiment): ConfigError[] {
  const out: ConfigError[] = [];
  const n = cfg.nodes;
  const checkNode = (path: string, node: number) => {
    if (node >= n) out.push(new ConfigError(path, `must be less than nodes (${n})`, node));
  };
  const f = cfg.faults;
  f.loss.links.forEach((l, i) => {
    checkNode(`faults.loss.links[${i}].from`, l.from);
    checkNode(`faults.loss.links[${i}].to`, l.to);
  });
  f.stragglers.forEach((s, i) => checkNode(`faults.stragglers[${i}].node`, s.node));
  f.crashes.forEach((c, i) => checkNode(`faults.crashes[${i}].node`, c.node));
  f.stalls.forEach((c, i) => checkNode(`faults.stalls[${i}].node`, c.node));
  f.leaves.forEach((c, i) => checkNode(`faults.leaves[${i}].node`, c.node));
  f.joins.forEach((c, i) => checkNode(`faults.joins[${i}].node`, c.node));
  f.byzantine.forEach((b, i) => checkNode(`faults.byzantine[${i}].node`, b.node));
  f.partitions.forEach((p, i) => {
    if (p.to <= p.from)
      out.push(
        new ConfigError(
          `faults.partitions[${i}].to`,
          `must be greater than from (${p.from})`,
          p.to,
        ),
      );
    const seen = new Set<number>();
    p.groups.forEach((g, gi) =>
      g.forEach((node, k) => {
        checkNode(`faults.partitions[${i}].groups[${gi}][${k}]`, node);
        if (seen.has(node))
          out.push(
            new ConfigError(
              `faults.partitions[${i}].groups[${gi}][${k}]`,
              'node is in two groups',
              node,
            ),
          );
        seen.add(node);
      }),
    );
  });
  if (cfg.gossip.sync === 'async' && cfg.gossip.mixing === 'push-sum')
    out.push(
      new ConfigError(
        'gossip.sync',
        "must be 'lockstep' with push-sum mixing (push-sum mixes every share exactly once)",
        cfg.gossip.sync,
      ),
    );
  if (cfg.gossip.pairwise && cfg.gossip.mixing === 'push-sum')
    out.push(
      new ConfigError(
        'gossip.pairwise',
        'is not supported with push-sum mixing (its shares are not symmetric); use laplacian or metropolis',
        true,
      ),
    );
  if (cfg.gossip.pairwise && cfg.gossip.sync === 'async')
    out.push(
      new ConfigError(
        'gossip.pairwise',
        "needs gossip.sync: 'lockstep' (an async node mixes models of other rounds)",
        true,
      ),
    );
  if (cfg.run.rounds < 1)
    out.push(new ConfigError('run.rounds', 'must be at least 1', cfg.run.rounds));
  const finish = cfg.gossip.finish;
  if (finish.rounds > 0 && finish.at === 'end' && finish.rounds >= cfg.run.rounds)
    out.push(
      new ConfigError(
        'gossip.finish.rounds',
        `must be less than run.rounds (${cfg.run.rounds})`,
        finish.rounds,
      ),
    );
  if (finish.rounds > 0 && finish.at === 'collect') {
    if (!cfg.swa.enabled)
      out.push(new ConfigError('gossip.finish.at', "'collect' needs swa.enabled", finish.at));
    else if (finish.rounds >= cfg.swa.cycle)
      out.push(
        new ConfigError(
          'gossip.finish.rounds',
          `must be less than swa.cycle (${cfg.swa.cycle}) with at: collect`,
          finish.rounds,
        ),
      );
  }
  if (cfg.train.quasiGlobalMomentum && !(cfg.train.momentum > 0))
    out.push(
      new ConfigError(
        'train.quasiGlobalMomentum',
        'needs train.momentum > 0 (it is the momentum of the quasi-global buffer)',
        true,
      ),
    );
  if (cfg.train.gradientTracking) out.push(...trackingProblems(cfg));
  if (cfg.swa.settle > 0 && !(cfg.swa.enabled && cfg.swa.gossip))
    out.push(
      new ConfigError(
        'swa.settle',
        'needs swa.enabled and swa.gossip (only gossiped SWA averages change in the settle rounds)',
        cfg.swa.settle,
      ),
    );
  else if (cfg.swa.settle > 0 && cfg.swa.settle > cfg.run.rounds - cfg.swa.cycle)
    out.push(
      new ConfigError(
        'swa.settle',
        `must leave at least one SWA cycle: at most run.rounds - swa.cycle (${cfg.run.rounds - cfg.swa.cycle})`,
        cfg.swa.settle,
      ),
    );
  if (cfg.swa.gossip && cfg.gossip.sync === 'async')
    out.push(
      new ConfigError(
        'swa.gossip',
        "needs gossip.sync: 'lockstep' (averages are mixed with the models of the same round)",
        true,
      ),
    );
  if (cfg.swa.gossip && cfg.gossip.robust.kind !== 'none')
    out.push(
      new ConfigError(
        'swa.gossip',
        "is not supported with gossip.robust (the SWA averages would share the models' clip radius)",
        true,
      ),
    );
  return out;
}

/**
 * What gradient tracking cannot run with: each breaks the invariant it rests on, that the nodes'
 * corrections sum to zero (learn/tracking.ts), or is not combined with it yet.
 */
function trackingProblems(cfg: Experiment): ConfigError[] {
  // [field, value, when it conflicts, why]
  const rules: [string, unknown, boolean, string][] = [
    [
      'gossip.mixing',
      cfg.gossip.mixing,
      cfg.gossip.mixing === 'push-sum',
      "push-sum's matrix keeps sums only with its mass weights (Push-DIGing is not implemented); use laplacian or metropolis",
    ],
    [
      'gossip.sync',
      cfg.gossip.sync,
      cfg.gossip.sync === 'async',
      'stale trackers mixed one-sided break the sum of the corrections',
    ],
    [
      'gossip.robust.kind',
      cfg.gossip.robust.kind,
      cfg.gossip.robust.kind !== 'none',
      'clipped or trimmed trackers break the sum of the corrections',
    ],
    [
      'train.momentum',
      cfg.train.momentum,
      cfg.train.momentum > 0,
      'not combined with momentum (set train.momentum: 0)',
    ],
    [
      'faults.crashes',
      cfg.faults.crashes.length,
      cfg.faults.crashes.length > 0,
      "a restarted node's correction is rolled back, and the sum of the corrections with it",
    ],
    [
      'faults.leaves',
      cfg.faults.leaves.length,
      cfg.faults.leaves.length > 0,
      'a leaving node takes its correction away from the sum',
    ],
  ];
  return rules
    .filter(([, , conflicts]) => conflicts)
    .map(
      ([field, value, , reason]) =>
        new ConfigError(field, `is not supported with train.gradientTracking: ${reason}`, value),
    );
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) {
    throw new ConfigError(path, 'is not a valid field path');
  }
  let cur: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = {};
    else if (typeof next !== 'object' || Array.isArray(next))
      throw new ConfigError(path, `${k} is not a mapping`);
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}
