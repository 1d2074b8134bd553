/**
 * The topology file format of `topologies/*.json`: node count, undirected edges, and optionally
 * node names, 2-D positions (for drawing) and explicit matchings (MATCHA's own graphs are stored
 * already decomposed; their order is the order of the per-round Bernoulli draws).
 *
 *   {
 *     "nodes": 4,
 *     "edges": [[0, 1], [1, 2], [2, 3], [0, 3]],
 *     "matchings": [[[0, 1], [2, 3]], [[1, 2], [0, 3]]]       // optional
 *   }
 *
 *   const g = loadTopologyFile('topologies/ring-8.json');   // throws TopologyError naming the field
 *   const text = serializeTopology(g, { name: 'ring-8' });
 *
 * The JSON schema in topologies/topology.schema.json is generated from `topologyFileSchema` (a test
 * keeps the two identical); the structural checks (self-loops, duplicates, range, connectivity,
 * matchings) are in graph.ts.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { TopologyError } from '../errors.js';
import { makeGraph } from './graph.js';
import type { Graph } from './types.js';

const nodeId = z.int().min(0).describe('node index, 0..nodes-1');
const edge = z.tuple([nodeId, nodeId]).describe('undirected edge [u, v], u != v');

export const topologyFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().optional().describe('short name, e.g. ring-8'),
    description: z.string().optional(),
    generator: z
      .strictObject({
        kind: z.string(),
        seed: z.int(),
        params: z.record(z.string(), z.number()),
      })
      .optional()
      .describe('how the graph was generated (flatmesh topology gen), for provenance'),
    nodes: z.int().min(2).describe('number of nodes; nodes are 0..nodes-1'),
    names: z.array(z.string()).optional().describe('one display name per node'),
    positions: z
      .array(z.tuple([z.number(), z.number()]))
      .optional()
      .describe('one [x, y] drawing position per node'),
    edges: z.array(edge).describe('undirected edges, each once; the graph must be connected'),
    matchings: z
      .array(z.array(edge))
      .optional()
      .describe(
        'optional explicit matching decomposition: each matching is a set of edges sharing no node; together they cover every edge exactly once',
      ),
  })
  .meta({
    title: 'flatmesh topology',
    description: 'A base graph for decentralized learning, with optional MATCHA matchings.',
  });

export type TopologyFile = z.infer<typeof topologyFileSchema>;

/** The JSON schema of the file format (written to topologies/topology.schema.json). */
export function topologyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(topologyFileSchema) as Record<string, unknown>;
}

/** Validates parsed JSON as a topology file and builds the graph. */
export function parseTopology(json: unknown, source?: string): Graph {
  try {
    const r = topologyFileSchema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new TopologyError(formatPath(issue.path) || '(root)', issue.message);
    }
    const f = r.data;
    return makeGraph(f.nodes, f.edges, {
      ...(f.matchings ? { matchings: f.matchings } : {}),
      ...(f.names ? { names: f.names } : {}),
      ...(f.positions ? { positions: f.positions } : {}),
    });
  } catch (e) {
    if (e instanceof TopologyError && source !== undefined) {
      throw new TopologyError(e.field, `${e.message.slice(e.field.length + 2)} (in ${source})`);
    }
    throw e;
  }
}

/** Reads, parses and validates a topology file. */
export function loadTopologyFile(path: string): Graph {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TopologyError(path, `cannot read topology file (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TopologyError(path, `not valid JSON (${(e as Error).message})`);
  }
  return parseTopology(json, path);
}

export interface TopologyMeta {
  readonly $schema?: string;
  readonly name?: string;
  readonly description?: string;
  readonly generator?: TopologyFile['generator'];
}

/** The graph as topology-file JSON text: readable, one matching per line, edges wrapped. */
export function serializeTopology(g: Graph, meta: TopologyMeta = {}): string {
  const fields: [string, string][] = [];
  const put = (k: string, v: unknown) => fields.push([k, JSON.stringify(v)]);
  if (meta.$schema !== undefined) put('$schema', meta.$schema);
  if (meta.name !== undefined) put('name', meta.name);
  if (meta.description !== undefined) put('description', meta.description);
  if (meta.generator !== undefined) put('generator', meta.generator);
  put('nodes', g.n);
  if (g.names)
    fields.push([
      'names',
      wrap(
        g.names.map((s) => JSON.stringify(s)),
        '    ',
      ),
    ]);
  if (g.positions) {
    const pos = g.positions.map((p) => `[${round6(p[0])}, ${round6(p[1])}]`);
    fields.push(['positions', wrap(pos, '    ')]);
  }
  fields.push(['edges', wrap(g.edges.map(pair), '    ')]);
  if (g.matchings) {
    const lines = g.matchings.map((m) => `    ${wrap(m.map(pair), '      ')}`);
    fields.push(['matchings', `[\n${lines.join(',\n')}\n  ]`]);
  }
  return `{\n${fields.map(([k, v]) => `  ${JSON.stringify(k)}: ${v}`).join(',\n')}\n}\n`;
}

function pair(e: readonly [number, number]): string {
  return `[${e[0]}, ${e[1]}]`;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** `[a, b, ...]` on one line when short, otherwise broken into lines of about 90 characters. */
function wrap(items: readonly string[], indent: string): string {
  const one = `[${items.join(', ')}]`;
  if (one.length <= 90) return one;
  const lines: string[] = [];
  let line = '';
  for (const it of items) {
    if (line && line.length + it.length + 2 > 90) {
      lines.push(line);
      line = '';
    }
    line += line ? `, ${it}` : it;
  }
  if (line) lines.push(line);
  return `[\n${lines.map((l) => indent + l).join(',\n')}\n${indent.slice(2)}]`;
}

function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : s ? `.${String(k)}` : String(k);
  return s;
}
