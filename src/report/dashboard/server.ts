/**
 * The dashboard's HTTP server: a static page (./page), the run's events over Server-Sent Events,
 * the last lines of a node's log, Prometheus metrics, and (unless read-only) the control endpoint.
 * It knows nothing of launchers: whoever starts it hands in an event source and a control
 * function (src/cli/dashboard.ts wires a launch; src/cli/watch.ts a run directory).
 *
 *   const d = await startDashboard({ source, runDir, control: (body) => live.apply(...) });
 *   console.log(d.url);   // http://127.0.0.1:PORT/?token=...
 *
 * Safety: it binds 127.0.0.1 unless told otherwise; every request must name this server in its
 * Host header (against DNS rebinding); a request from a page of another origin is refused; a
 * control request needs the per-launch random token (header `x-flatmesh-token`) and a JSON body,
 * which a cross-origin form cannot send without a preflight this server never answers.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { packagePath } from '../../paths.js';
import { DashboardMetrics, type MetricsEvent } from './metrics.js';

/** The smallest shape of a run event the server needs; the page reads the rest. */
export type DashboardEvent = MetricsEvent & { type: string };

export interface DashboardSource {
  /** Calls `fn` with every past event, then with each new one; returns an unsubscribe. */
  subscribe(fn: (e: DashboardEvent) => void): () => void;
}

export interface DashboardOptions {
  source: DashboardSource;
  /** The run directory (node logs are read from DIR/nodes/<i>/node.log), once known. */
  runDir: () => string | undefined;
  /** Carry out a control request; throw an error whose message says what was wrong. */
  control?: (body: unknown) => unknown;
  /** Show no controls and refuse control requests (also when `control` is absent). */
  readonly?: boolean;
  /** Replay a finished run (the page shows a round slider). */
  replay?: boolean;
  host?: string;
  /** 0 (default): any free port. */
  port?: number;
  /** Default: 32 random bytes, hex. */
  token?: string;
}

export interface Dashboard {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const PAGE_FILES: Record<string, [file: () => string, type: string]> = {
  '/': [() => packagePath('src', 'report', 'dashboard', 'page', 'index.html'), 'text/html'],
  '/app.js': [() => packagePath('src', 'report', 'dashboard', 'page', 'app.js'), 'text/javascript'],
  '/style.css': [() => packagePath('src', 'report', 'dashboard', 'page', 'style.css'), 'text/css'],
  '/uplot.js': [() => uplotFile('uPlot.iife.min.js'), 'text/javascript'],
  '/uplot.css': [() => uplotFile('uPlot.min.css'), 'text/css'],
};

function uplotFile(name: string): string {
  const require = createRequire(packagePath('package.json'));
  return join(require.resolve('uplot/package.json'), '..', 'dist', name);
}

/** The last `lines` lines of a file (reads at most its last 64 KiB). */
export function tailLines(file: string, lines: number): string[] {
  if (!existsSync(file)) return [];
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const n = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, size - n);
    const all = buf.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines);
  } finally {
    closeSync(fd);
  }
}

function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(32).toString('hex');
  const readonly = opts.readonly === true || opts.control === undefined;
  const metrics = new DashboardMetrics();
  const clients = new Set<ServerResponse>();
  // One subscription feeds the metrics; each page gets its own (the history first, then live).
  const offMetrics = opts.source.subscribe((e) => metrics.observe(e));
  let port = 0;

  const allowedHosts = () => new Set([`${host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`]);

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, {
      'content-type': `${type}; charset=utf-8`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, v: unknown) =>
    send(res, status, 'application/json', JSON.stringify(v));

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${host}:${port}`);
    if (!allowedHosts().has(req.headers.host ?? '')) {
      return json(res, 421, { error: `unknown host ${req.headers.host ?? '(none)'}` });
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedHosts().has(origin.replace(/^http:\/\//, ''))) {
      return json(res, 403, { error: `cross-origin request from ${origin} refused` });
    }
    const route = url.pathname;
    if (req.method === 'GET' && PAGE_FILES[route]) {
      const [file, type] = PAGE_FILES[route];
      return send(res, 200, type, readFileSync(file()));
    }
    if (req.method === 'GET' && route === '/api/info') {
      return json(res, 200, { readonly, replay: opts.replay === true });
    }
    if (req.method === 'GET' && route === '/api/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      clients.add(res);
      const off = opts.source.subscribe((e) => res.write(`data: ${JSON.stringify(e)}\n\n`));
      req.on('close', () => {
        off();
        clients.delete(res);
      });
      return;
    }
    if (req.method === 'GET' && route === '/api/log') {
      const node = Number(url.searchParams.get('node'));
      if (!Number.isInteger(node) || node < 0 || node > 100_000) {
        return json(res, 400, { error: 'node: must be a node index' });
      }
      const dir = opts.runDir();
      const lines = dir ? tailLines(join(dir, 'nodes', String(node), 'node.log'), 40) : [];
      return json(res, 200, { node, lines });
    }
    if (req.method === 'GET' && route === '/metrics') {
      return send(res, 200, metrics.contentType, await metrics.text());
    }
    if (req.method === 'POST' && route === '/api/control') {
      if (readonly) return json(res, 403, { error: 'this dashboard is read-only' });
      const given = req.headers['x-flatmesh-token'];
      if (!sameToken(typeof given === 'string' ? given : undefined, token)) {
        return json(res, 401, { error: 'missing or wrong token' });
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        return json(res, 415, { error: 'content-type must be application/json' });
      }
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req, 64 * 1024));
      } catch (e) {
        return json(res, 400, { error: `body: ${(e as Error).message}` });
      }
      try {
        return json(res, 200, { ok: true, event: opts.control!(body) });
      } catch (e) {
        return json(res, 400, { error: (e as Error).message });
      }
    }
    return json(res, 404, { error: `no ${req.method} ${route}` });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
      else res.end();
    });
  });
  // SSE streams stay open: keep them from pinning the event loop of a finished command.
  server.on('connection', (s) => s.unref());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  server.unref();
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/?token=${token}`,
    port,
    token,
    async close() {
      offMetrics();
      for (const c of clients) c.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error(`larger than ${limit} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
