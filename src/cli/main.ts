#!/usr/bin/env node
/**
 * The flatmesh command. It only parses arguments and calls the command functions in src/cli/*,
 * then maps errors to exit codes (typed errors carry their own; anything else is 1).
 *
 *   flatmesh launch --nodes 8 --rounds 40
 *   flatmesh sim --config exp.yaml --set faults.loss.p=0.3
 *   flatmesh topology inspect topologies/matcha-er-8.json --budget 0.5 --json
 */
import '../net/polyfill.js';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { z } from 'zod';
import { experimentSchema } from '../config/schema.js';
import { isFlatmeshError, UsageError } from '../errors.js';
import { dataFetch, dataInspect } from './data.js';
import { commandHelp, wantsHelp } from './help.js';
import { collectCommand, launchCommand, nodeCommand, nodeGroupCommand, simCommand } from './run.js';
import { sweepCommand } from './sweep.js';
import { topologyDraw, topologyGen, topologyInspect } from './topology.js';

export const USAGE = `flatmesh: peer-to-peer decentralized learning over libp2p

usage: flatmesh <command> [options]

  launch     run N node processes on this machine (--config F --nodes N --rounds R --topology G --out DIR --seed S --set path=value --resume --quiet --json
             --dashboard [--port P] [--dashboard-readonly]: a live page on 127.0.0.1, its URL printed;
             --nodes-per-process K: processes of K nodes each, every node with its own host)
  watch      the dashboard of a run directory: live while another launch runs it, a replay once done (RUN_DIR [--port P])
  sim        the same experiment in one process over the in-memory transport (same options;
             --batched trains all MLP/logreg nodes of a round in one batched computation;
             --replay RUN_DIR replays a launched run with the faults injected into it by hand)
  node       one node process (--config F --id I --dir D [--roster R] [--listen ADDR] [--run-id ID])
  collect    one run directory and summary from the node directories of several machines (DIR... --out OUT [--json])
  roster     keys and roster for a run across machines (--nodes N --out DIR [--hosts H1,H2] [--base-port P] [--run-id ID] [--psk | --no-psk])
  topology   inspect FILE [--budget Cb] [--json] | draw FILE [--budget Cb] --out F.svg | gen KIND --n N [--p P --k K --radius R --beta B --rows R --cols C] [--seed S]
  data       inspect --dataset D --partition P --nodes N [--seed S] [--json] | fetch DATASET [--data-dir DIR]
  doctor     backend, versions and a throughput probe [--json]
  sweep      a grid of experiments x seeds, resumable; table with 95% CIs (--config F|PRESET [--resume] [--only key=value,seed=N] [--json] [--quiet])
  flatness   Hessian spectrum, trace, sharpness and landscapes of a run's models: RUN_DIR [--models node:0,swa:0,average,nodes,swas] [--data test|train|shard:I] [--samples N] [--top K] [--trace] [--probes P] [--trace-method hutchinson|hutch++] [--density] [--landscape 1d|2d|path:A,B] [--json] [--out DIR] [--seed S] [--weight-decay WD] [--quiet]
  report     a self-contained HTML page of plots: RUN_DIR | SWEEP_DIR | several RUN_DIRs compared [--out F.html] [--png DIR]
  config     schema (JSON schema of experiment files) | show [--config F] [--set path=value] (the resolved experiment)

\`flatmesh <command> --help\` prints a command's options.
`;

const experimentOptions = {
  config: { type: 'string', short: 'c' },
  set: { type: 'string', multiple: true },
  nodes: { type: 'string', short: 'n' },
  rounds: { type: 'string', short: 'r' },
  seed: { type: 'string' },
  topology: { type: 'string', short: 't' },
  out: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  batched: { type: 'boolean' },
  resume: { type: 'boolean' },
  replay: { type: 'string' },
} as const;

const dashboardOptions = {
  dashboard: { type: 'boolean' },
  port: { type: 'string' },
  'dashboard-readonly': { type: 'boolean' },
  'nodes-per-process': { type: 'string' },
} as const;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n))
    throw new UsageError(`--${name} must be an integer (got ${JSON.stringify(v)})`);
  return n;
}

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n))
    throw new UsageError(`--${name} must be a number (got ${JSON.stringify(v)})`);
  return n;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

function parse<T extends OptionsConfig>(argv: string[], options: T) {
  try {
    return parseArgs({
      args: argv,
      options,
      allowPositionals: true as const,
      strict: true as const,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`);
  }
}

function required<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new UsageError(`missing ${what}\n\n${USAGE}`);
  return v;
}

export async function main(
  argv: string[],
  signal?: AbortSignal,
): Promise<{ code: number; out: string }> {
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && wantsHelp(rest)) {
    const help = commandHelp(cmd, USAGE);
    if (help) return { code: 0, out: help };
  }
  switch (cmd) {
    case 'launch':
    case 'sim': {
      const { values: v } = parse(
        rest,
        cmd === 'launch' ? { ...experimentOptions, ...dashboardOptions } : experimentOptions,
      );
      const dash = v as {
        dashboard?: boolean;
        port?: string;
        'dashboard-readonly'?: boolean;
        'nodes-per-process'?: string;
      };
      const perProcess = int('nodes-per-process', dash['nodes-per-process']);
      if (perProcess !== undefined && perProcess < 1) {
        throw new UsageError(`--nodes-per-process must be at least 1 (got ${perProcess})`);
      }
      const flags = {
        ...(v.config && { config: v.config }),
        ...(v.set && { set: v.set }),
        nodes: int('nodes', v.nodes),
        rounds: int('rounds', v.rounds),
        seed: int('seed', v.seed),
        ...(v.topology && { topology: v.topology }),
        ...(v.out && { out: v.out }),
        ...(v.json && { json: true }),
        ...(v.quiet && { quiet: true }),
        ...((dash.dashboard || dash['dashboard-readonly']) && {
          dashboard: {
            ...(dash.port !== undefined && { port: int('port', dash.port) }),
            ...(dash['dashboard-readonly'] && { readonly: true }),
          },
        }),
      };
      if (v.batched && cmd !== 'sim') throw new UsageError(`--batched: only for sim\n\n${USAGE}`);
      if (v.replay && cmd !== 'sim') throw new UsageError(`--replay: only for sim\n\n${USAGE}`);
      if (v.resume && cmd !== 'launch')
        throw new UsageError(`--resume: only for launch\n\n${USAGE}`);
      const out =
        cmd === 'launch'
          ? await launchCommand(
              {
                ...flags,
                ...(v.resume && { resume: true }),
                ...(perProcess !== undefined && { nodesPerProcess: perProcess }),
              },
              signal,
            )
          : await simCommand(
              {
                ...flags,
                ...(v.batched && { batched: true }),
                ...(v.replay && { replay: v.replay }),
              },
              signal,
            );
      return { code: 0, out };
    }
    case 'sweep': {
      const { values: v } = parse(rest, {
        config: { type: 'string', short: 'c' },
        resume: { type: 'boolean' },
        only: { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
      });
      const out = await sweepCommand(
        {
          config: required(v.config, '--config (the sweep file or a preset name)'),
          ...(v.resume && { resume: true }),
          ...(v.only && { only: v.only }),
          ...(v.json && { json: true }),
          ...(v.quiet && { quiet: true }),
        },
        signal,
      );
      return { code: 0, out };
    }
    case 'flatness': {
      const { values: v, positionals: p } = parse(rest, {
        models: { type: 'string' },
        data: { type: 'string' },
        samples: { type: 'string' },
        top: { type: 'string' },
        trace: { type: 'boolean' },
        probes: { type: 'string' },
        'trace-method': { type: 'string' },
        density: { type: 'boolean' },
        landscape: { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string', short: 'o' },
        seed: { type: 'string' },
        'weight-decay': { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
      });
      const { flatnessCommand } = await import('./flatness.js');
      const out = await flatnessCommand({
        runDir: required(p[0], 'RUN_DIR'),
        ...(v.models && { models: v.models }),
        ...(v.data && { data: v.data }),
        ...(v.samples !== undefined && { samples: int('samples', v.samples)! }),
        ...(v.top !== undefined && { top: int('top', v.top)! }),
        ...(v.trace && { trace: true }),
        ...(v.probes !== undefined && { probes: int('probes', v.probes)! }),
        ...(v['trace-method'] !== undefined && { traceMethod: v['trace-method'] }),
        ...(v.density && { density: true }),
        ...(v.landscape && { landscape: v.landscape }),
        ...(v.json && { json: true }),
        ...(v.out && { out: v.out }),
        ...(v.seed !== undefined && { seed: int('seed', v.seed)! }),
        ...(v['weight-decay'] !== undefined && {
          weightDecay: num('weight-decay', v['weight-decay'])!,
        }),
        ...(v.quiet && { quiet: true }),
      });
      return { code: 0, out };
    }
    case 'report': {
      const { values: v, positionals } = parse(rest, {
        out: { type: 'string', short: 'o' },
        png: { type: 'string' },
      });
      const { reportCommand } = await import('./report.js');
      const out = await reportCommand({
        dirs: positionals,
        ...(v.out && { out: v.out }),
        ...(v.png && { png: v.png }),
      });
      return { code: 0, out };
    }
    case 'watch': {
      const { values: v, positionals: p } = parse(rest, { port: { type: 'string' } });
      const { watchCommand } = await import('./watch.js');
      const out = await watchCommand(
        { dir: required(p[0], 'RUN_DIR'), port: int('port', v.port) },
        signal,
      );
      return { code: 0, out };
    }
    case 'roster': {
      const { values: v } = parse(rest, {
        nodes: { type: 'string', short: 'n' },
        out: { type: 'string', short: 'o' },
        hosts: { type: 'string' },
        'base-port': { type: 'string' },
        'run-id': { type: 'string' },
        psk: { type: 'boolean' },
        'no-psk': { type: 'boolean' },
      });
      const { rosterCommand } = await import('./roster.js');
      return {
        code: 0,
        out: await rosterCommand({
          nodes: required(int('nodes', v.nodes), '--nodes'),
          out: required(v.out, '--out'),
          ...(v.hosts && { hosts: v.hosts.split(',').filter(Boolean) }),
          basePort: int('base-port', v['base-port']) ?? 4100,
          ...(v['run-id'] && { runId: v['run-id'] }),
          ...(v['no-psk'] ? { psk: false } : v.psk ? { psk: true } : {}),
        }),
      };
    }
    case 'node': {
      const { values: v } = parse(rest, {
        config: { type: 'string' },
        id: { type: 'string' },
        dir: { type: 'string' },
        roster: { type: 'string' },
        listen: { type: 'string' },
        'run-id': { type: 'string' },
        shards: { type: 'string' },
      });
      const code = await nodeCommand({
        config: required(v.config, '--config'),
        id: required(int('id', v.id), '--id'),
        dir: required(v.dir, '--dir'),
        ...(v.roster && { roster: v.roster }),
        ...(v.listen && { listen: v.listen }),
        ...(v['run-id'] && { runId: v['run-id'] }),
        ...(v.shards && { shards: v.shards }),
      });
      return { code, out: '' };
    }
    case 'node-group': {
      // Internal: the process of several nodes `launch --nodes-per-process K` starts.
      const { values: v } = parse(rest, {
        config: { type: 'string' },
        shards: { type: 'string' },
        'nodes-dir': { type: 'string' },
        ids: { type: 'string' },
      });
      const code = await nodeGroupCommand({
        config: required(v.config, '--config'),
        shards: required(v.shards, '--shards'),
        nodesDir: required(v['nodes-dir'], '--nodes-dir'),
      });
      return { code, out: '' };
    }
    case 'collect': {
      const { values: v, positionals: p } = parse(rest, {
        out: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
      });
      if (p.length === 0) throw new UsageError(`missing DIR (a node or run directory)\n\n${USAGE}`);
      const out = await collectCommand({
        dirs: p,
        out: required(v.out, '--out'),
        ...(v.json && { json: true }),
      });
      return { code: 0, out };
    }
    case 'topology': {
      const [sub, ...args] = rest;
      const { values: v, positionals: p } = parse(args, {
        budget: { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string', short: 'o' },
        n: { type: 'string' },
        p: { type: 'string' },
        k: { type: 'string' },
        radius: { type: 'string' },
        beta: { type: 'string' },
        rows: { type: 'string' },
        cols: { type: 'string' },
        seed: { type: 'string' },
        name: { type: 'string' },
      });
      const budget = num('budget', v.budget);
      switch (sub) {
        case 'inspect':
          return {
            code: 0,
            out: await topologyInspect({
              file: required(p[0], 'FILE'),
              ...(budget !== undefined && { budget }),
              ...(v.json && { json: true }),
            }),
          };
        case 'draw': {
          const out = await topologyDraw({
            file: required(p[0], 'FILE'),
            ...(budget !== undefined && { budget }),
            ...(v.out && { out: v.out }),
          });
          return { code: 0, out };
        }
        case 'gen': {
          const params = Object.fromEntries(
            (['p', 'k', 'radius', 'beta', 'rows', 'cols'] as const)
              .map((k) => [k, num(k, v[k])] as const)
              .filter(([, x]) => x !== undefined),
          );
          const out = await topologyGen({
            kind: required(p[0], 'KIND'),
            n: required(int('n', v.n), '--n'),
            ...params,
            ...(v.seed !== undefined && { seed: int('seed', v.seed)! }),
            ...(v.name && { name: v.name }),
          });
          return { code: 0, out };
        }
        default:
          throw new UsageError(`unknown topology command ${JSON.stringify(sub ?? '')}\n\n${USAGE}`);
      }
    }
    case 'data': {
      const [sub, ...args] = rest;
      const { values: v, positionals: p } = parse(args, {
        dataset: { type: 'string' },
        partition: { type: 'string' },
        nodes: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
      });
      if (sub === 'inspect') {
        return {
          code: 0,
          out: await dataInspect({
            dataset: v.dataset ?? 'digits',
            partition: v.partition ?? 'dirichlet:0.5',
            nodes: int('nodes', v.nodes) ?? 8,
            ...(v.seed !== undefined && { seed: int('seed', v.seed)! }),
            ...(v.json && { json: true }),
            ...(v['data-dir'] && { dataDir: v['data-dir'] }),
          }),
        };
      }
      if (sub === 'fetch') {
        return {
          code: 0,
          out: await dataFetch({
            dataset: required(p[0], 'DATASET'),
            ...(v['data-dir'] && { dataDir: v['data-dir'] }),
            ...(signal && { signal }),
          }),
        };
      }
      throw new UsageError(`unknown data command ${JSON.stringify(sub ?? '')}\n\n${USAGE}`);
    }
    case 'doctor': {
      const { values: v } = parse(rest, { json: { type: 'boolean' } });
      const { doctor } = await import('./doctor.js');
      return { code: 0, out: await doctor({ ...(v.json && { json: true }) }) };
    }
    case 'config': {
      const [sub, ...args] = rest;
      if (sub === 'schema')
        return {
          code: 0,
          out: `${JSON.stringify(z.toJSONSchema(experimentSchema, { io: 'input' }), null, 2)}\n`,
        };
      if (sub === 'show') {
        const { values: v } = parse(args, {
          config: { type: 'string', short: 'c' },
          set: { type: 'string', multiple: true },
        });
        const { loadExperiment } = await import('../config/index.js');
        const cfg = loadExperiment({
          ...(v.config && { file: v.config }),
          ...(v.set && { set: v.set }),
        });
        return { code: 0, out: `${JSON.stringify(cfg, null, 2)}\n` };
      }
      throw new UsageError(`unknown config command ${JSON.stringify(sub ?? '')}\n\n${USAGE}`);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return { code: 0, out: USAGE };
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
  }
}

/** Runs the command line of this process and exits with its code. */
export async function cli(): Promise<void> {
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\nstopping (Ctrl-C again to force)...\n');
    ac.abort();
  };
  // `flatmesh node` handles its own signals (it must stop its runtime cleanly).
  if (process.argv[2] !== 'node' && process.argv[2] !== 'node-group') {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    const { code, out } = await main(process.argv.slice(2), ac.signal);
    if (out) process.stdout.write(out);
    process.exit(ac.signal.aborted && code === 0 ? 130 : code);
  } catch (e) {
    if (isFlatmeshError(e)) {
      process.stderr.write(`flatmesh: ${e.message}\n`);
      // Interrupted by Ctrl-C / SIGTERM: the shell's convention, whatever the command made of it.
      if (ac.signal.aborted) process.exit(130);
      if (process.send && process.argv[2] === 'node') {
        process.send({
          type: 'error',
          id: Number(process.env.FLATMESH_NODE_ID ?? -1),
          name: e.name,
          message: e.message,
        });
      }
      process.exit(e.exitCode);
    }
    process.stderr.write(`flatmesh: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  }
}

// Run only when executed directly (tests import `main`; start.ts calls `cli`).
const invoked = process.argv[1] ?? '';
if (/cli[\\/]main\.(ts|js)$/.test(invoked)) void cli();
