/**
 * Bundles the CLI into one CommonJS file, dist/flatmesh.cjs, that src/cli/start.ts runs through
 * V8's code cache (why: see there). Part of `npm run build`, which also warms the cache
 * (dist/flatmesh.cjs.cache) with a small launch; without one, the first run of the command writes it.
 *
 *   node scripts/bundle.mjs [--no-cache]
 *
 * @tensorflow/tfjs-node stays outside (optional, native, and start.ts does not use the bundle when it
 * is installed). `import.meta.url` becomes the bundle's own URL: the package root is found by
 * walking up from it (src/paths.ts), and the launcher's child entry by its name (src/run/launcher.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = join(root, 'dist', 'flatmesh.cjs');
const START = join(root, 'dist', 'src', 'cli', 'start.js');

/**
 * '@tensorflow/tfjs' becomes src/compute/tfjs-bundled.ts, and the tfjs packages it needs resolve to
 * their ES module builds (one copy of tfjs-core, whose per-op modules the bundler can leave out).
 */
const require = createRequire(import.meta.url);
const slimTfjs = {
  name: 'slim-tfjs',
  setup(b) {
    b.onResolve({ filter: /^@tensorflow\/tfjs$/ }, () => ({
      path: join(root, 'src', 'compute', 'tfjs-bundled.ts'),
    }));
    b.onResolve({ filter: /^@tensorflow\/tfjs-(core|backend-cpu|backend-wasm)$/ }, (args) => {
      const pj = require.resolve(`${args.path}/package.json`);
      return { path: join(dirname(pj), JSON.parse(readFileSync(pj, 'utf8')).module) };
    });
  },
};

/**
 * vega-canvas's Node build tries `await import('canvas')` at its top level, which a CommonJS bundle
 * cannot hold. flatmesh renders figures to SVG and has no node-canvas (Vega then estimates text
 * widths), so the bundle takes the browser build, which finds no DOM and answers null the same way.
 */
const vegaWithoutCanvas = {
  name: 'vega-without-canvas',
  setup(b) {
    b.onResolve({ filter: /^vega-canvas$/ }, () => {
      // Its package exports only the two builds: the Node one sits beside the browser one.
      const nodeBuild = require.resolve('vega-canvas');
      return { path: join(dirname(nodeBuild), 'vega-canvas.browser.js') };
    });
  },
};

export async function bundle() {
  await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // resvg is a native addon, loaded from node_modules when a PNG is asked for.
    external: ['@tensorflow/tfjs-node', '@resvg/resvg-js'],
    // Whitespace only: stack traces keep their function names.
    minifyWhitespace: true,
    define: { 'import.meta.url': '__flatmesh_import_meta_url' },
    banner: { js: "var __flatmesh_import_meta_url=require('url').pathToFileURL(__filename).href;" },
    plugins: [slimTfjs, vegaWithoutCanvas],
    logLevel: 'warning',
  });
  rmSync(`${BUNDLE}.cache`, { force: true });
}

/**
 * Writes the code cache from a small real launch (3 nodes, 2 rounds on the embedded digits) in which
 * only the node processes write it (FLATMESH_CODE_CACHE_WARMUP, see start.ts): V8's cache then holds
 * every function a node compiled (libp2p's connection set-up, training, the exchange), not only the
 * top level, so the node processes of later runs compile almost nothing.
 */
function warmCodeCache() {
  const dir = mkdtempSync(join(tmpdir(), 'flatmesh-warmup-'));
  try {
    const exp = join(dir, 'exp.json');
    writeFileSync(
      exp,
      JSON.stringify({
        nodes: 3,
        run: { rounds: 2, seed: 1 },
        topology: { graph: 'ring' },
        model: { hidden: [16] },
        train: { localSteps: 2 },
        eval: { every: 1 },
      }),
    );
    execFileSync(
      process.execPath,
      [START, 'launch', '--config', exp, '--out', join(dir, 'run'), '--quiet'],
      { stdio: 'ignore', env: { ...process.env, FLATMESH_CODE_CACHE_WARMUP: 'node' } },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await bundle();
  if (!process.argv.includes('--no-cache')) {
    try {
      warmCodeCache();
    } catch (e) {
      // Not fatal: the first run of the command then writes the cache (a colder one).
      process.stderr.write(`bundle: warming the code cache failed (${e.message.split('\n')[0]})\n`);
    }
  }
  process.stdout.write(`bundled ${BUNDLE}\n`);
}
