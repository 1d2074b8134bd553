import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath, packageRoot } from '../../src/paths.js';

/** The MATCHA reference figures (test/fixtures/matcha_graph0.json, a copy of ../shared/reference's). */
export interface MatchaReference {
  n_nodes: number;
  edges: [number, number][];
  matchings: [number, number][][];
  budget: number;
  probabilities: number[];
  lambda2_expected_laplacian: number;
  alpha: number;
  rho: number;
  vanilla_dpsgd_all_edges: { alpha: number; rho: number; laplacian_eigenvalues: number[] };
}

export function matchaReference(): MatchaReference {
  const p = join(packageRoot(), 'test', 'fixtures', 'matcha_graph0.json');
  return JSON.parse(readFileSync(p, 'utf8')) as MatchaReference;
}

export function shipped(name: string): string {
  return packagePath('topologies', name);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}
