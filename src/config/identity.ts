/**
 * The identity of an experiment: what a run computes, as opposed to what it is called and where it
 * writes. A checkpoint carries it, so a node never resumes a model under a different experiment,
 * and a refusal names every field that differs.
 *
 *   experimentHash(cfg)                  // '3f9a0c17d2b4e615'
 *   experimentDiff(stored, cfg)          // [{ path: 'run.seed', was: 1, now: 2 }]
 *   formatDiff(experimentDiff(a, b))     // 'run.seed 1 -> 2; train.optimizer "asam" -> "sgd"'
 */
import { createHash } from 'node:crypto';
import type { Experiment } from './schema.js';

/**
 * Fields that name or place a run rather than define it: the run id, the output directory, the
 * directory data files are read from, the tensor backend (a resumed run may move to another
 * machine), and the path of the pre-shared key file (where a host keeps the key; which key a run
 * uses is checked by the roster's key fingerprint, not by the experiment).
 */
const NOT_IDENTITY = new Set(['run.id', 'run.out', 'data.dir', 'backend', 'network.psk']);

/** The experiment as `path -> value` leaves (arrays are leaves), without the non-identity fields. */
export function experimentFields(
  cfg: Experiment | Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (v: unknown, path: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const k of Object.keys(v).sort())
        walk((v as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    } else if (v !== undefined && !NOT_IDENTITY.has(path)) {
      out[path] = v;
    }
  };
  walk(cfg, '');
  return out;
}

/** A short hash of the identity fields (16 hex digits of SHA-256 over their canonical JSON). */
export function experimentHash(cfg: Experiment | Record<string, unknown>): string {
  return hashFields(experimentFields(cfg));
}

export function hashFields(fields: Record<string, unknown>): string {
  const canonical = JSON.stringify(
    Object.keys(fields)
      .sort()
      .map((k) => [k, fields[k]]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

export interface FieldDifference {
  path: string;
  /** undefined: the field is absent on that side. */
  was: unknown;
  now: unknown;
}

/** The identity fields that differ between two experiments (or their `experimentFields`). */
export function experimentDiff(
  was: Record<string, unknown>,
  now: Record<string, unknown>,
  { flat = false }: { flat?: boolean } = {},
): FieldDifference[] {
  const a = flat ? was : experimentFields(was);
  const b = flat ? now : experimentFields(now);
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return paths
    .filter((p) => JSON.stringify(a[p]) !== JSON.stringify(b[p]))
    .map((p) => ({ path: p, was: a[p], now: b[p] }));
}

export function formatDiff(diffs: readonly FieldDifference[]): string {
  const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));
  return diffs.map((d) => `${d.path} ${show(d.was)} -> ${show(d.now)}`).join('; ');
}
