/**
 * `flatmesh topology gen | inspect | draw`: each command is a plain async function taking an
 * options object and returning what the CLI prints (the lead's main.ts parses the arguments).
 *
 *   await topologyGen({ kind: 'erdos-renyi', n: 32, p: 0.2, seed: 1 });    // topology JSON text
 *   await topologyInspect({ file: 'topologies/matcha-er-8.json', budget: 0.5, json: true });
 *   await topologyDraw({ file: 'topologies/torus-4x4.json', budget: 0.5, out: 'graph.svg' });
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { drawTopologySvg } from '../topology/draw.js';
import { loadTopologyFile, serializeTopology } from '../topology/format.js';
import { canonicalKind, type GeneratorParams, generateTopology } from '../topology/generators.js';
import { DEFAULT_BUDGET, formatInspect, inspectTopology } from '../topology/inspect.js';
import { matchaPlan } from '../topology/matcha.js';

export interface TopologyGenOptions extends GeneratorParams {
  readonly kind: string;
  /** Default 0. */
  readonly seed?: number;
  /** Written into the file's `name` field; default `<kind>-<n>`. */
  readonly name?: string;
}

/** `flatmesh topology gen KIND --n N [--p P --k K --radius R --beta B --rows R --cols C] [--seed S]` */
export async function topologyGen(opts: TopologyGenOptions): Promise<string> {
  const seed = opts.seed ?? 0;
  const { kind: rawKind, seed: _s, name, ...rest } = opts;
  const kind = canonicalKind(rawKind);
  const graph = generateTopology(kind, rest, seed);
  const params: Record<string, number> = {};
  for (const [k, v] of Object.entries(rest)) if (typeof v === 'number') params[k] = v;
  return serializeTopology(graph, {
    name: name ?? `${kind}-${opts.n}`,
    generator: { kind, seed, params },
  });
}

export interface TopologyInspectOptions {
  readonly file: string;
  /** Communication budget Cb in (0, 1]; default 0.5. */
  readonly budget?: number;
  /** Print the stable JSON object instead of the text report. */
  readonly json?: boolean;
}

/** `flatmesh topology inspect FILE [--budget Cb] [--json]` */
export async function topologyInspect(opts: TopologyInspectOptions): Promise<string> {
  const result = inspectTopology(loadTopologyFile(opts.file), {
    budget: opts.budget ?? DEFAULT_BUDGET,
  });
  if (opts.json) return `${JSON.stringify(result, null, 2)}\n`;
  return formatInspect(result, opts.file);
}

export interface TopologyDrawOptions {
  readonly file: string;
  /** Default 0.5. */
  readonly budget?: number;
  /** SVG path to write; when absent the SVG text is returned instead. */
  readonly out?: string;
  /** Default: the file's base name. */
  readonly title?: string;
}

/** `flatmesh topology draw FILE [--budget Cb] --out graph.svg` */
export async function topologyDraw(opts: TopologyDrawOptions): Promise<string> {
  const graph = loadTopologyFile(opts.file);
  const budget = opts.budget ?? DEFAULT_BUDGET;
  const plan = matchaPlan(graph, budget);
  const svg = drawTopologySvg(graph, plan, {
    title: opts.title ?? `${basename(opts.file)}  (Cb = ${budget})`,
  });
  if (opts.out === undefined) return svg;
  writeFileSync(opts.out, svg);
  return `wrote ${opts.out}: ${graph.n} nodes, ${graph.edges.length} edges, ${plan.matchings.length} matchings\n`;
}
