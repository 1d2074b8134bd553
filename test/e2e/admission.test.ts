/**
 * Admission, with real libp2p hosts: a node that has no roster yet admits nobody and opens no
 * protocol (a real `flatmesh node` process waiting for its launcher, and a transport in this
 * process); a private run (pre-shared key) refuses every host without its key, rostered or not;
 * a node given a private run's roster without the key says so; `flatmesh roster` writes a fresh
 * run id and, for hosts beyond loopback, a fresh key.
 */
import '../../src/net/polyfill.js';
import assert from 'node:assert/strict';
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { multiaddr } from '@multiformats/multiaddr';
import { ConfigError, UsageError } from '../../src/errors.js';
import {
  createHost,
  type Host,
  loadOrCreateIdentity,
  parseRoster,
  type Roster,
} from '../../src/net/libp2p/host.js';
import { PSK_FILE, readPsk, writePsk } from '../../src/net/libp2p/psk.js';
import {
  type Libp2pTransport,
  libp2pTransport,
  WEIGHTS_PROTOCOL,
} from '../../src/net/libp2p/transport.js';
import { countingMetrics } from '../../src/net/metrics.js';
import { createRoster } from '../../src/run/roster.js';
import { LAYOUT, RUN_ID, SIGNATURE, SIZE, weights } from '../net/helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'flatmesh-admission-'));
let dirs = 0;
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A host that admits anyone (it is the one being refused), with an optional key. */
async function outsider(psk?: Uint8Array): Promise<Host> {
  const { privateKey } = await loadOrCreateIdentity(join(tmp, `outsider-${dirs++}`));
  const host = await createHost({
    privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    gater: {},
    ...(psk && { psk }),
  });
  await host.start();
  return host;
}

/**
 * Try what an outsider did before: open a stream of a protocol every libp2p host speaks (ping) and
 * one of the weights protocol. Returns the streams it got. (A dial alone may resolve before the
 * refusing side has closed the connection: refused means nothing could be said over it.)
 */
async function intrude(host: Host, addr: string): Promise<string[]> {
  const got: string[] = [];
  for (const protocol of ['/ipfs/ping/1.0.0', WEIGHTS_PROTOCOL]) {
    try {
      const s = await host.dialProtocol(multiaddr(addr), protocol, {
        signal: AbortSignal.timeout(5_000),
      });
      got.push(protocol);
      s.abort(new Error('done'));
    } catch {}
  }
  return got;
}

/** A started transport; sends give up after `sendTimeoutMs` (short where refusal is expected). */
async function transport(
  self: number,
  opts: { psk?: Uint8Array; roster?: Roster; sendTimeoutMs?: number } = {},
) {
  const { privateKey } = await loadOrCreateIdentity(join(tmp, `node-${dirs++}`));
  const metrics = countingMetrics();
  const t = libp2pTransport({
    self,
    runId: RUN_ID,
    signature: SIGNATURE,
    size: SIZE,
    layout: LAYOUT,
    codec: 'f32',
    privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    sendTimeoutMs: opts.sendTimeoutMs ?? 5_000,
    ...(opts.psk && { psk: opts.psk }),
    ...(opts.roster && { roster: opts.roster }),
  })({ metrics });
  await t.start();
  return { t, metrics };
}

const rosterOf = (ts: readonly Libp2pTransport[], extra: Partial<Roster> = {}): Roster => ({
  runId: RUN_ID,
  nodes: ts.map((t, id) => ({ id, peerId: t.peerId, addrs: t.addresses() })),
  ...extra,
});

describe('admission', () => {
  it('a flatmesh node process waiting for its roster admits no peer and opens no protocol', async () => {
    const dir = join(tmp, 'waiting');
    const cfg = join(tmp, 'waiting.yaml');
    writeFileSync(cfg, 'nodes: 2\nrun: { rounds: 2 }\nmodel: { hidden: [8] }\n');
    // Forked with an IPC channel, as the launcher does, and never sent the roster.
    const child: ChildProcess = fork(MAIN, ['node', '--config', cfg, '--id', '0', '--dir', dir], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const listening = await new Promise<{ addrs: string[] }>((resolve, reject) => {
        child.on('message', (m: { type?: string; addrs?: string[] }) => {
          if (m.type === 'listening' && m.addrs) resolve({ addrs: m.addrs });
        });
        void exited.then((code) => reject(new Error(`node exited ${code}: ${stderr}`)));
      });
      const host = await outsider();
      try {
        assert.deepEqual(await intrude(host, listening.addrs[0]!), []);
        assert.equal(host.getConnections().length, 0);
      } finally {
        await host.stop();
      }
    } finally {
      child.send({ type: 'stop' });
      await exited;
    }
  });

  it('a transport without a roster refuses everyone, then admits exactly its roster', async () => {
    const a = await transport(0);
    const b = await transport(1, { sendTimeoutMs: 60_000 });
    const host = await outsider();
    try {
      // b is about to be rostered, but a has no roster yet: refused like anyone.
      assert.deepEqual(await intrude(host, a.t.addresses()[0]!), []);
      assert.equal((await b.t.connect()).length, 0, 'no roster on b: it dials nobody');
      const roster = rosterOf([a.t, b.t]);
      await b.t.setRoster(roster);
      assert.deepEqual(await b.t.connect([0]), [], 'a still has no roster');
      await a.t.setRoster(roster);
      const sent = await b.t.send(0, 1, weights(1));
      assert.equal(sent.status, 'delivered', JSON.stringify(sent));
      assert.deepEqual(await intrude(host, a.t.addresses()[0]!), [], 'not in the roster');
      assert.ok((a.metrics.counts.rejected['unknown-sender'] ?? 0) >= 1);
    } finally {
      await host.stop();
      await a.t.stop();
      await b.t.stop();
    }
  });

  it('a private run refuses every host without its key, in the roster or not', async () => {
    const key = await writePsk(join(tmp, `swarm-${dirs++}.key`));
    const other = await writePsk(join(tmp, `swarm-${dirs++}.key`));
    const a = await transport(0, { psk: key.key });
    const b = await transport(1, { psk: key.key });
    const c = await transport(2); // rostered, no key
    const d = await transport(3, { psk: other.key }); // rostered, another run's key
    const ts = [a.t, b.t, c.t, d.t];
    try {
      const roster = rosterOf(ts);
      await Promise.all(ts.map((t) => t.setRoster(roster)));
      assert.equal((await a.t.send(1, 1, weights(1))).status, 'delivered');
      const refused = await Promise.all(
        [c.t, d.t].flatMap((x) => [x.send(0, 1, weights(2)), a.t.send(x.self, 1, weights(1))]),
      );
      assert.deepEqual(
        refused.map((o) => o.status),
        ['failed', 'failed', 'failed', 'failed'],
      );
      const hosts = await Promise.all([outsider(), outsider(other.key)]);
      try {
        const got = await Promise.all(hosts.map((h) => intrude(h, a.t.addresses()[0]!)));
        assert.deepEqual(got, [[], []]);
      } finally {
        await Promise.all(hosts.map((h) => h.stop()));
      }
      assert.deepEqual(a.t.connectedPeers(), [1]);
      const r = await b.t.collect(1, [0], 5_000);
      assert.deepEqual(r.received[0]!.weights, weights(1));
    } finally {
      await Promise.all(ts.map((t) => t.stop()));
    }
  });

  it("a node given a private run's roster without its key names network.psk", async () => {
    const key = await writePsk(join(tmp, `swarm-${dirs++}.key`));
    const other = await writePsk(join(tmp, `swarm-${dirs++}.key`));
    const a = await transport(0, { psk: key.key });
    const roster = rosterOf([a.t], { pskFingerprint: key.fingerprint });
    try {
      await a.t.setRoster(roster);
      for (const psk of [undefined, other.key]) {
        const b = await transport(1, psk && { psk });
        try {
          await assert.rejects(b.t.setRoster(roster), (e: unknown) => {
            assert.ok(e instanceof ConfigError);
            assert.equal(e.path, 'network.psk');
            assert.match(e.message, new RegExp(key.fingerprint));
            return true;
          });
        } finally {
          await b.t.stop();
        }
      }
    } finally {
      await a.t.stop();
    }
  });

  it('flatmesh roster writes a fresh run id, and a key for hosts beyond loopback', async () => {
    const one = await createRoster({ nodes: 2, basePort: 4100, out: join(tmp, 'r1') });
    const two = await createRoster({ nodes: 2, basePort: 4100, out: join(tmp, 'r2') });
    assert.notEqual(one.runId, two.runId);
    assert.equal(one.pskFingerprint, undefined, 'loopback only: no key by default');
    const out = join(tmp, 'r3');
    const multi = await createRoster({
      nodes: 3,
      hosts: ['10.0.0.1', '10.0.0.2'],
      basePort: 4100,
      out,
    });
    assert.match(multi.pskFingerprint ?? '', /^[0-9a-f]{16}$/);
    const keyFile = join(out, PSK_FILE);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal((await readPsk(keyFile)).fingerprint, multi.pskFingerprint);
    assert.deepEqual(
      parseRoster(JSON.parse(readFileSync(join(out, 'roster.json'), 'utf8'))),
      multi,
    );
    const off = await createRoster({
      nodes: 1,
      hosts: ['10.0.0.1'],
      basePort: 4100,
      psk: false,
      out: join(tmp, 'r4'),
    });
    assert.equal(off.pskFingerprint, undefined);
    writeFileSync(join(tmp, 'bad.key'), 'not a key\n');
    await assert.rejects(readPsk(join(tmp, 'bad.key')), /network\.psk: .*not a libp2p swarm key/);
    await assert.rejects(
      readPsk(join(tmp, 'missing.key')),
      /network\.psk: cannot read the key file/,
    );
  });

  it('flatmesh node on its own without --roster is refused instead of waiting forever', () => {
    const cfg = join(tmp, 'alone.yaml');
    writeFileSync(cfg, 'nodes: 2\n');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', MAIN, 'node', '--config', cfg, '--id', '0', '--dir', join(tmp, 'alone')],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, new UsageError('').exitCode, r.stderr);
    assert.match(r.stderr, /--roster/);
  });
});
