/**
 * Where data sets live on disk. The user's data directory is `FLATMESH_DATA` if set, else
 * `~/.cache/flatmesh` (honouring `XDG_CACHE_HOME`); Fashion-MNIST is also found where the Debian
 * package `dataset-fashion-mnist` installs it.
 *
 *   const dir = dataDir();                      // write target for fetched data
 *   const dirs = candidateDirs('fashion-mnist');  // where to look for a data set's files
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The Debian package's install location for Fashion-MNIST. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The directory flatmesh reads and writes data sets in (not created here). */
export function dataDir(override?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (override) return resolve(override);
  const fromEnv = env['FLATMESH_DATA'];
  if (fromEnv) return resolve(fromEnv);
  const cache = env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(cache, 'flatmesh');
}

/** Directories to search for a named data set, most specific first. */
export function candidateDirs(dataset: string, override?: string): string[] {
  const base = dataDir(override);
  const dirs = [join(base, dataset), base];
  if (dataset === 'fashion-mnist') dirs.push(DEBIAN_FASHION_MNIST_DIR);
  return dirs;
}
