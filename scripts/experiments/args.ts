/**
 * Command-line helpers shared by the experiment scripts: `--name value` flags and a deep merge of
 * a `--set` JSON object into a base experiment.
 *
 *   const seeds = flag(args, 'seeds', '1,2,3').split(',').map(Number);
 *   const cfg = parseExperiment(merge(base, JSON.parse(flag(args, 'set', '{}'))));
 */
export type Json = Record<string, unknown>;

export function flag(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `b` merged into `a`: objects merge key by key, anything else in `b` replaces `a`'s value. */
export function merge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k], v) : v;
  return out;
}
