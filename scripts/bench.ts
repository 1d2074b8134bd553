/**
 * Benchmarks (never timed tests): `npm run bench -- <suite> [args]`. Each suite prints one JSON line
 * per measurement to stdout. Suites live in scripts/bench/<suite>.ts and export `run(args)`.
 *
 *   npm run bench -- train      # training throughput per model/backend/optimizer vs a bare tfjs loop
 *   npm run bench -- kernels    # training and its kernels vs PyTorch (one thread), same run
 *   npm run bench -- topology   # MATCHA optimization time on generated graphs
 *   npm run bench -- net        # weight exchange throughput vs raw TCP, round overhead
 *   npm run bench -- cluster    # N real processes: start-up, round time, CPU per node-round, PSS, failed sends
 *   npm run bench -- cluster-profile DIR  # where a profiled cluster run's CPU went (cluster --profile --keep DIR)
 *   npm run bench -- perf-table --out DIR # issue 14's side-by-side table: runs the benchmarks above, prints it
 *   npm run bench -- sim        # the simulator, batched against unbatched (time, CPU, figures agreeing)
 *   npm run bench -- dashboard  # extra CPU of a launch with the live dashboard and a client reading it
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), 'bench');
const suites = readdirSync(here)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
const [suite, ...args] = process.argv.slice(2);
if (!suite || !suites.includes(suite)) {
  console.error(`usage: npm run bench -- <suite> [args]\nsuites: ${suites.join(', ') || '(none)'}`);
  process.exit(suite ? 64 : 0);
}
const mod = (await import(pathToFileURL(join(here, `${suite}.ts`)).href)) as {
  run(args: string[]): Promise<void>;
};
await mod.run(args);
