/**
 * What the live dashboard costs a launch: the installed `flatmesh launch` (build first) of N node
 * processes on the embedded digits data, alternately without and with `--dashboard` and a client
 * reading it the way the page does (the SSE event stream, a node's log every 2 s, and a Prometheus
 * scrape of /metrics every 5 s), `--pairs` times. CPU is the launch's whole process tree (the
 * launcher and every node, user + system), read from /proc/self/stat's cutime/cstime when the
 * launcher has exited and been reaped; the client's own CPU (this process) is not counted, as a
 * browser's would not be.
 *
 *   npm run bench -- dashboard [--nodes 16] [--rounds 30] [--pairs 3]
 *
 * Prints JSON lines (suite "dashboard"): one `launch` line per launch (mode, CPU seconds, wall
 * seconds, events the client read), then a `cost` line: mean CPU per mode, the relative extra CPU
 * with the dashboard, and each pair's difference; load averages before and after.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { mean, round } from './lib/stats.js';

const START = new URL('../../dist/src/cli/start.js', import.meta.url).pathname;
const TICKS = 100;

/** CPU (s) of this process's reaped descendants. */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 of stat, 14 and 15 after the paren.
  return (Number(f[13]) + Number(f[14])) / TICKS;
}

/** Read the dashboard like its page (and a Prometheus server) would, until stopped. */
function client(url: string): { stop(): void; events(): number } {
  const ac = new AbortController();
  let events = 0;
  void (async () => {
    const res = await fetch(new URL('/api/events', url), { signal: ac.signal });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      events += dec.decode(value).split('\n\n').length - 1;
    }
  })().catch(() => {});
  const get = (path: string) =>
    fetch(new URL(path, url), { signal: ac.signal }).then(
      (r) => r.text(),
      () => '',
    );
  const logs = setInterval(() => void get('/api/log?node=2'), 2000);
  const scrape = setInterval(() => void get('/metrics'), 5000);
  return {
    stop() {
      clearInterval(logs);
      clearInterval(scrape);
      ac.abort();
    },
    events: () => events,
  };
}

async function launchOnce(cfgFile: string, out: string, dashboard: boolean) {
  const cpu0 = childrenCpuSeconds();
  const t0 = performance.now();
  const args = [START, 'launch', '--config', cfgFile, '--out', out, '--quiet'];
  if (dashboard) args.push('--dashboard');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let c: ReturnType<typeof client> | undefined;
  let err = '';
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
    const m = /dashboard: (\S+)/.exec(err);
    if (m && !c) c = client(m[1]!);
  });
  const code = await new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  c?.stop();
  if (code !== 0) throw new Error(`launch exited with ${code}: ${err.slice(-500)}`);
  return {
    cpuSeconds: childrenCpuSeconds() - cpu0,
    wallSeconds: (performance.now() - t0) / 1000,
    events: c?.events() ?? 0,
  };
}

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1]! : def;
  };
  const nodes = Number(opt('nodes', '16'));
  const rounds = Number(opt('rounds', '30'));
  const pairs = Number(opt('pairs', '3'));
  const dir = mkdtempSync(join(tmpdir(), 'flatmesh-bench-dashboard-'));
  const cfgFile = join(dir, 'exp.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      nodes,
      run: { seed: 1, rounds },
      topology: { graph: 'ring', sampler: 'matcha', budget: 0.5 },
      data: { dataset: 'digits', partition: 'dirichlet:0.5' },
      model: { kind: 'mlp', hidden: [200, 200] },
      train: { optimizer: 'sgd', localSteps: 10 },
      eval: { every: 5 },
      gossip: { deadlineMs: 30_000 },
      backend: 'wasm',
    }),
  );
  const loadBefore = loadavg();
  const line = (o: object) => console.log(JSON.stringify({ suite: 'dashboard', ...o }));
  line({ kind: 'config', nodes, rounds, pairs, cores: cpus().length, loadBefore });
  const cpu: Record<'plain' | 'dashboard', number[]> = { plain: [], dashboard: [] };
  try {
    for (let p = 0; p < pairs; p++) {
      // Alternate which goes first, so a drift in the machine's load favours neither.
      const order: ('plain' | 'dashboard')[] =
        p % 2 === 0 ? ['plain', 'dashboard'] : ['dashboard', 'plain'];
      for (const mode of order) {
        const out = join(dir, `run-${p}-${mode}`);
        const r = await launchOnce(cfgFile, out, mode === 'dashboard');
        rmSync(out, { recursive: true, force: true });
        cpu[mode].push(r.cpuSeconds);
        line({ kind: 'launch', pair: p, mode, ...r, load: loadavg()[0] });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const plain = mean(cpu.plain);
  const dash = mean(cpu.dashboard);
  line({
    kind: 'cost',
    plainCpuSeconds: round(plain, 2),
    dashboardCpuSeconds: round(dash, 2),
    extraPercent: round((100 * (dash - plain)) / plain, 2),
    pairDifferencesPercent: cpu.plain.map((x, i) => round((100 * (cpu.dashboard[i]! - x)) / x, 2)),
    loadBefore,
    loadAfter: loadavg(),
  });
}
