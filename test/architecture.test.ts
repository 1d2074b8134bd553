/**
 * Layering (design.md): dependencies point down only. The learning core (learn, data, topology,
 * gossip) and the lower layers never import the network, node, run or CLI layers; net knows bytes,
 * not tensors (no tfjs, no learn). The report layer reads records; it never reaches into a running node.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';

const SRC = join(import.meta.dirname, '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [
    ...text.matchAll(
      /(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g,
    ),
  ].map((m) => (m[1] ?? m[2])!);
}

const layerOf = (file: string) => relative(SRC, file).split(/[\\/]/)[0]!;

const forbidden: Record<string, readonly string[]> = {
  compute: ['learn', 'data', 'topology', 'gossip', 'faults', 'net', 'node', 'run', 'cli', 'report'],
  config: ['learn', 'data', 'topology', 'gossip', 'faults', 'net', 'node', 'run', 'cli', 'report'],
  data: ['learn', 'topology', 'gossip', 'faults', 'net', 'node', 'run', 'cli', 'report'],
  learn: ['topology', 'gossip', 'faults', 'net', 'node', 'run', 'cli', 'report'],
  topology: ['learn', 'data', 'gossip', 'faults', 'net', 'node', 'run', 'cli', 'report'],
  gossip: ['learn', 'data', 'faults', 'net', 'node', 'run', 'cli', 'report'],
  faults: ['learn', 'data', 'node', 'run', 'cli'],
  net: ['learn', 'data', 'node', 'run', 'cli'],
  node: ['run', 'cli'],
  run: ['cli'],
  // Low enough that node/ and run/ use its record types; the page and its server are wired by cli/.
  report: ['faults', 'net', 'node', 'run', 'cli'],
};

describe('architecture', () => {
  it('keeps every dependency pointing down', () => {
    const violations: string[] = [];
    for (const file of files(SRC)) {
      const layer = layerOf(file);
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) {
          if (layer === 'net' && spec.startsWith('@tensorflow/'))
            violations.push(`${relative(SRC, file)} imports ${spec}`);
          continue;
        }
        const target = layerOf(join(file, '..', spec));
        if (forbidden[layer]?.includes(target))
          violations.push(`${relative(SRC, file)} (${layer}) imports ${spec} (${target})`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
