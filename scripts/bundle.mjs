/**
 * Bundles the CLI into one CommonJS file, dist/flatmesh.cjs, that src/cli/start.ts runs through
 * V8's code cache (why: see there). Part of `npm run build`; the first run of the command writes
 * the cache (dist/flatmesh.cjs.cache), and so does this script, by running `flatmesh config show`.
 *
 *   node scripts/bundle.mjs [--out dist/flatmesh.cjs] [--no-cache]
 *
 * @tensorflow/tfjs-node stays outside (optional, native, and start.ts does not use the bundle when it
 * is installed). `import.meta.url` becomes the bundle's own URL: the package root is found by
 * walking up from it (src/paths.ts), and the launcher's child entry by its name (src/run/launcher.ts).
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function bundle(out = join(root, 'dist', 'flatmesh.cjs')) {
  await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@tensorflow/tfjs-node'],
    // Whitespace only: stack traces keep their function names.
    minifyWhitespace: true,
    define: { 'import.meta.url': '__flatmesh_import_meta_url' },
    banner: { js: "var __flatmesh_import_meta_url=require('url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
  });
  rmSync(`${out}.cache`, { force: true });
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = await bundle(i >= 0 ? resolve(process.argv[i + 1]) : undefined);
  if (!process.argv.includes('--no-cache')) {
    // Warm the code cache: start.ts writes it when the command exits.
    execFileSync(
      process.execPath,
      [join(root, 'dist', 'src', 'cli', 'start.js'), 'config', 'show'],
      {
        stdio: 'ignore',
      },
    );
  }
  process.stdout.write(`bundled ${out}\n`);
}
