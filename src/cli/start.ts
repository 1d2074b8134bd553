#!/usr/bin/env node
/**
 * The installed `flatmesh` command: runs the one-file bundle of the CLI (dist/flatmesh.cjs, built by
 * scripts/bundle.mjs) through V8's code cache, else the plain compiled modules.
 *
 * Why: a launch starts N node processes on the same cores, and each process used to spend ~1 s of
 * CPU importing ~1,500 ES modules (tfjs, libp2p, zod...) before doing anything. One bundled file
 * whose compiled code comes from a cache starts in ~0.1 s (`npm run bench -- startup`).
 *
 * The unbundled path is taken when there is no bundle, when FLATMESH_NO_BUNDLE=1, or when the
 * optional @tensorflow/tfjs-node is installed: its native backend must share the tfjs it was built
 * against, which the bundle has inlined.
 *
 *   node dist/src/cli/start.js launch --nodes 8
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

interface CliModule {
  cli(): Promise<void>;
}

/** dist/src/cli/start.js -> dist/flatmesh.cjs */
function bundlePath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'flatmesh.cjs');
}

/**
 * Installed and usable: its install script built the native binding into lib/. An npm that skips
 * install scripts (as npm now does unless they are approved) leaves the package without it, and
 * the backend falls back to wasm anyway: the bundle is then the right code to run.
 */
function tfjsNodeInstalled(from: string): boolean {
  try {
    const pkg = createRequire(from).resolve('@tensorflow/tfjs-node/package.json');
    return existsSync(join(dirname(pkg), 'lib'));
  } catch {
    return false;
  }
}

/**
 * Evaluates the CommonJS bundle at `file` with its code cache (`file`.cache) and returns its
 * exports. A missing or rejected cache (another Node version or V8 flags) is rebuilt when the
 * process exits, written to a temporary file and renamed, so concurrent processes never read a
 * half-written one; a read-only install just runs without it.
 */
function loadBundle(file: string): CliModule {
  const cacheFile = `${file}.cache`;
  // The bundle keeps the CLI's shebang line, which is not valid inside a function wrapper.
  const source = readFileSync(file, 'utf8').replace(/^#!.*/, '');
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new Script(wrapped, {
    filename: file,
    ...(cachedData && { cachedData }),
  });
  // The build warms the cache with a small run in which only the command named here writes it
  // (scripts/bundle.mjs: the node processes of a launch, whose start-up is what N processes pay).
  const warmup = process.env.FLATMESH_CODE_CACHE_WARMUP;
  const write =
    warmup !== undefined ? warmup === process.argv[2] : !cachedData || script.cachedDataRejected;
  if (write) {
    // At exit, the cache also holds every function this run compiled, not just the top level.
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      try {
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        // read-only install: start without a cache next time too
      }
    });
  }
  const module = { exports: {} as CliModule };
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  fn(module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}

async function start(): Promise<void> {
  const file = bundlePath();
  const bundled =
    process.env.FLATMESH_NO_BUNDLE !== '1' && existsSync(file) && !tfjsNodeInstalled(file);
  const mod: CliModule = bundled ? loadBundle(file) : await import('./main.js');
  await mod.cli();
}

void start();
