/**
 * Locations inside the installed package (shipped data, topologies, presets), found by walking up
 * from this module to the directory holding flatmesh's package.json. Works the same whether the
 * code runs from `src/` (tsx) or from the compiled `dist/src/`.
 *
 *   packagePath('topologies', 'ring-8.json')
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (
      existsSync(pj) &&
      (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'flatmesh'
    ) {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('flatmesh package root not found above ' + import.meta.url);
    dir = up;
  }
}

export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
