/**
 * Weight exchange throughput between two node processes on loopback, next to raw TCP between two
 * Node processes, the Noise cipher's own speed and Node's native TLS, measured in the same run.
 * `npm run bench -- net [--seconds 3] [--sizes 50000,...] [--codecs f32,f16,int8] [--skip-raw] [--no-recycle]`
 * `npm run bench -- net --quick`   (1 s, the 6.4 MB f32 frame only: the figure)
 *
 * Prints one JSON line per measurement:
 *   {"suite":"net","kind":"raw-tcp","mbPerS":...}
 *   {"suite":"net","kind":"cipher-bound","sealMBPerS":...,"openMBPerS":...,"bestRatio":...}
 *   {"suite":"net","kind":"tls-bound","cipher":"TLS_PSK_WITH_AES_256_GCM_SHA384","mbPerS":...,"ratioToRawTcp":...}
 *   {"suite":"net","kind":"libp2p","codec":"f32","floats":400000,"frameMB":1.6,"framesPerS":...,
 *    "mbPerS":...  (f32-equivalent payload: floats * 4 per frame), "wireMBPerS":..., "ratioToRawTcp":...}
 *
 * The receiver hands each vector back (Transport.recycle) once it checked it, as a node does after
 * mixing; `--no-recycle` measures a receiver that leaves every vector to the GC.
 *
 * The parent spawns a receiver and a sender child (node --import tsx this file, role in argv) and
 * talks to them over IPC. Children exit when the parent dies ('disconnect').
 */
import '../../src/net/polyfill.js';
import { fork } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { connect as tlsConnect, createServer as tlsCreateServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import type { Roster } from '../../src/net/libp2p/host.js';
import { type Libp2pTransport, libp2pTransport } from '../../src/net/libp2p/transport.js';
import type { Codec } from '../../src/net/transport.js';

const SELF = fileURLToPath(import.meta.url);
const RUN = 'bench-net';
const SIGNATURE = '00000000feedbeef';
const CODECS: readonly Codec[] = ['f32', 'f16', 'int8'];
/** Noise's largest plaintext per message (65,535 bytes less the 16-byte tag). */
const NOISE_PLAINTEXT = 65_519;

type Msg = Record<string, unknown> & { op: string };

/**
 * TLS for the tls-bound row. A pre-shared key spares the bench a certificate (Node cannot make
 * one); TLS 1.2 PSK with AES-256-GCM has the same record layer cost as TLS 1.3's default suite.
 */
const BENCH_TLS = { ciphers: 'PSK-AES256-GCM-SHA384', maxVersion: 'TLSv1.2' } as const;
const BENCH_PSK = Buffer.alloc(32, 0x5a);

function layoutFor(floats: number): number[] {
  // A few tensors, like a small MLP: int8 gets one scale per tensor.
  const a = Math.floor(floats * 0.6);
  const b = Math.floor(floats * 0.3);
  return [a, b, floats - a - b];
}

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1]! : def;
  };
  const quick = args.includes('--quick');
  const seconds = Number(opt('seconds', quick ? '1' : '3'));
  const sizes = opt('sizes', quick ? '1600000' : '50000,400000,1600000')
    .split(',')
    .map(Number);
  const codecs = opt('codecs', quick ? 'f32' : CODECS.join(',')).split(',') as Codec[];
  const recycle = !args.includes('--no-recycle');

  const recv = spawnChild('receiver');
  const send = spawnChild('sender');
  try {
    // (1) raw TCP, length-prefixed buffers of the largest model size.
    // The reference ('raw-tcp') assembles every frame into a fresh buffer, as a receiver that
    // hands frames on must; 'raw-tcp-discard' only counts bytes (an upper bound: kernel copies).
    const tcpBytes = 4 * Math.max(...sizes);
    let rawMBps = Number.NaN;
    // `--skip-raw` (for profiling the libp2p path alone) leaves the ratio out.
    for (const assemble of args.includes('--skip-raw') ? [] : [true, false]) {
      const { port } = (await recv.ask({ op: 'tcp-listen', assemble })) as { port: number };
      const tcp = (await send.ask({ op: 'tcp-send', port, bytes: tcpBytes, seconds })) as {
        mbPerS: number;
      };
      if (assemble) rawMBps = tcp.mbPerS;
      emit({
        kind: assemble ? 'raw-tcp' : 'raw-tcp-discard',
        frameMB: round(tcpBytes / 1e6),
        mbPerS: round(tcp.mbPerS),
      });
    }

    // (1b) The cipher floor: what Noise must do per byte, measured in a child like the others.
    if (!Number.isNaN(rawMBps)) {
      const c = (await send.ask({ op: 'cipher', seconds: Math.min(seconds, 1) })) as {
        sealMBPerS: number;
        openMBPerS: number;
      };
      emit({
        kind: 'cipher-bound',
        messageBytes: NOISE_PLAINTEXT,
        sealMBPerS: round(c.sealMBPerS),
        openMBPerS: round(c.openMBPerS),
        // Sender and receiver each pay the cipher once per byte. Overlapped on their own cores,
        // no Noise transport can move payload faster than the slower of the two: bestRatio. If
        // the two cannot overlap (one frame in flight, both on 2 shared cores): serialRatio.
        bestRatio: round(Math.min(c.sealMBPerS, c.openMBPerS) / rawMBps),
        serialRatio: round(1 / (1 / c.sealMBPerS + 1 / c.openMBPerS) / rawMBps),
        meaning:
          "Node's ChaCha20-Poly1305 on 65,519-byte (Noise-sized) messages; bestRatio = min(seal, open) / raw-tcp is the ceiling of ratioToRawTcp with sealing and opening overlapped, serialRatio the ceiling when they take turns",
      });
    }

    // (1c) The encrypted-channel floor: Node's own TLS (OpenSSL's record layer in C++, AES-GCM
    // with the CPU's AES instructions) with the same frames and receipts as raw-tcp. No
    // transport written in JS on Node can be expected to beat it.
    if (!Number.isNaN(rawMBps)) {
      const { port } = (await recv.ask({ op: 'tcp-listen', assemble: true, tls: true })) as {
        port: number;
      };
      const t = (await send.ask({ op: 'tcp-send', port, bytes: tcpBytes, seconds, tls: true })) as {
        mbPerS: number;
        cipher: string;
      };
      emit({
        kind: 'tls-bound',
        frameMB: round(tcpBytes / 1e6),
        cipher: t.cipher,
        mbPerS: round(t.mbPerS),
        ratioToRawTcp: round(t.mbPerS / rawMBps),
        meaning:
          'node:tls between the same two processes, same frames and receipts as raw-tcp: the encrypted channel Node runs in native code, an upper reference for any encrypted transport here',
      });
    }

    // (2) libp2p transports per size and codec.
    for (const floats of sizes) {
      for (const codec of codecs) {
        const init = { floats, codec };
        const r = (await recv.ask({ op: 'p2p-start', ...init })) as {
          peerId: string;
          addrs: string[];
        };
        const s = (await send.ask({ op: 'p2p-start', ...init })) as {
          peerId: string;
          addrs: string[];
        };
        const roster: Roster = {
          runId: RUN,
          nodes: [
            { id: 0, peerId: s.peerId, addrs: s.addrs },
            { id: 1, peerId: r.peerId, addrs: r.addrs },
          ],
        };
        await recv.ask({ op: 'p2p-roster', roster });
        await send.ask({ op: 'p2p-roster', roster });
        const collecting = recv.ask({ op: 'p2p-collect', seconds, recycle });
        const out = (await send.ask({ op: 'p2p-send', seconds })) as {
          frames: number;
          wireBytes: number;
          elapsed: number;
          failed: number;
          cpuMs: number;
          writeMs: number;
          answerMs: number;
          gcMs: number;
          majorGcs: number;
        };
        const got = (await collecting) as {
          frames: number;
          bad: number;
          cpuMs: number;
          gcMs: number;
          majorGcs: number;
        };
        const fps = out.frames / out.elapsed;
        const mbPerS = (fps * floats * 4) / 1e6;
        emit({
          kind: 'libp2p',
          codec,
          floats,
          frameMB: round((floats * 4) / 1e6),
          framesPerS: round(fps),
          mbPerS: round(mbPerS),
          wireMBPerS: round(out.wireBytes / out.elapsed / 1e6),
          ...(Number.isNaN(rawMBps) ? {} : { ratioToRawTcp: round(mbPerS / rawMBps) }),
          // CPU time (user + system) per frame: less sensitive to machine load than wall rates.
          senderCpuMsPerFrame: round(out.cpuMs / Math.max(1, out.frames)),
          receiverCpuMsPerFrame: round(got.cpuMs / Math.max(1, got.frames)),
          // GC pauses per frame, and full (mark-compact) collections in all, on either side.
          senderGcMsPerFrame: round(out.gcMs / Math.max(1, out.frames)),
          senderMajorGcs: out.majorGcs,
          receiverGcMsPerFrame: round(got.gcMs / Math.max(1, got.frames)),
          receiverMajorGcs: got.majorGcs,
          // Wall time per frame from send() to the frame handed to the stream, then to the receipt.
          writeMsPerFrame: round(out.writeMs / Math.max(1, out.frames + out.failed)),
          answerMsPerFrame: round(out.answerMs / Math.max(1, out.frames + out.failed)),
          recycle,
          received: got.frames,
          failed: out.failed,
          corrupted: got.bad,
        });
        await recv.ask({ op: 'p2p-stop' });
        await send.ask({ op: 'p2p-stop' });
      }
    }
  } finally {
    await Promise.all([recv.close(), send.close()]);
  }
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ suite: 'net', ...o })}\n`);
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

/** GC pauses from now on (main-thread pause time; incremental marking steps are not included). */
function watchGc(): { stop(): { gcMs: number; majorGcs: number } } {
  let gcMs = 0;
  let majorGcs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) majorGcs++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      for (const e of obs.takeRecords()) gcMs += e.duration;
      obs.disconnect();
      return { gcMs, majorGcs };
    },
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function spawnChild(role: string) {
  const child = fork(SELF, ['--bench-child', role], {
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.FLATMESH_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: Msg) => {
    const w = waiting.get(m.id as number);
    waiting.delete(m.id as number);
    if (m.error) w?.reject(new Error(`${role}: ${String(m.error)}`));
    else w?.resolve(m.result);
  });
  child.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`${role} exited with ${code}`));
    waiting.clear();
  });
  return {
    ask(msg: Msg): Promise<unknown> {
      const id = ++seq;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.send({ ...msg, id });
      });
    },
    /** Ask the child to exit (so --cpu-prof can write its profile); kill it if it does not. */
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.send({ op: 'exit', id: 0 });
      const timer = setTimeout(() => child.kill(), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---- child side ------------------------------------------------------------------------------

async function child(role: string): Promise<void> {
  // Die with the parent.
  process.on('disconnect', () => process.exit(0));
  let transport: Libp2pTransport | undefined;
  let floats = 0;
  let key: PrivateKey | undefined;
  const handlers: Record<string, (m: Msg) => Promise<unknown>> = {
    'tcp-listen': async (m) => {
      const assemble = m.assemble === true;
      const onSocket = (sock: Socket) => {
        // Parse u32 length prefixes and assemble each frame into a fresh buffer (what any receiver
        // that hands the frame on must do), then answer with a one-byte receipt.
        let frame: Buffer | undefined;
        let have = 0;
        const header = Buffer.alloc(4);
        let hfill = 0;
        sock.on('data', (buf: Buffer) => {
          let off = 0;
          while (off < buf.length) {
            if (!frame) {
              const take = Math.min(4 - hfill, buf.length - off);
              buf.copy(header, hfill, off, off + take);
              hfill += take;
              off += take;
              if (hfill === 4) {
                frame = Buffer.allocUnsafe(header.readUInt32LE(0));
                have = 0;
                hfill = 0;
              }
            } else {
              const take = Math.min(frame.length - have, buf.length - off);
              if (assemble) buf.copy(frame, have, off, off + take);
              have += take;
              off += take;
              if (have === frame.length) {
                frame = undefined;
                sock.write('k');
              }
            }
          }
        });
      };
      const server =
        m.tls === true
          ? tlsCreateServer({ ...BENCH_TLS, pskCallback: () => BENCH_PSK }, onSocket)
          : createServer(onSocket);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const addr = server.address();
      return { port: typeof addr === 'object' && addr ? addr.port : 0 };
    },
    'tcp-send': async (m) => {
      const bytes = m.bytes as number;
      const payload = Buffer.alloc(bytes + 4, 7);
      payload.writeUInt32LE(bytes, 0);
      const port = m.port as number;
      const sock =
        m.tls === true
          ? tlsConnect({
              ...BENCH_TLS,
              port,
              host: '127.0.0.1',
              pskCallback: () => ({ psk: BENCH_PSK, identity: 'bench' }),
              checkServerIdentity: () => undefined,
            })
          : tcpConnect(port, '127.0.0.1');
      await new Promise<void>((r) => sock.once(m.tls === true ? 'secureConnect' : 'connect', r));
      const cipher = 'getCipher' in sock ? sock.getCipher().standardName : 'none';
      let acks = 0;
      let wake: (() => void) | undefined;
      sock.on('data', (b: Buffer) => {
        acks += b.length;
        wake?.();
      });
      const end = Date.now() + (m.seconds as number) * 1000;
      const t0 = performance.now();
      let frames = 0;
      while (Date.now() < end) {
        sock.write(payload);
        frames++;
        while (acks < frames) await new Promise<void>((r) => (wake = r));
      }
      const elapsed = (performance.now() - t0) / 1000;
      sock.destroy();
      return { mbPerS: (frames * bytes) / elapsed / 1e6, cipher };
    },
    cipher: async (m) => {
      // Seal and open 65,519-byte messages as Noise does: a fresh cipher per message (new nonce).
      const key = randomBytes(32);
      const text = randomBytes(NOISE_PLAINTEXT);
      const nonce = Buffer.alloc(12);
      const ms = (m.seconds as number) * 1000;
      const seal = (n: number) => {
        nonce.writeUInt32LE(n, 4);
        const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
        const out = c.update(text);
        c.final();
        return { out, tag: c.getAuthTag() };
      };
      const rate = (fn: (n: number) => void) => {
        for (let n = 0; n < 20; n++) fn(n); // warm up
        let n = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < ms) fn(n++);
        return (n * NOISE_PLAINTEXT) / ((performance.now() - t0) / 1000) / 1e6;
      };
      const sealMBPerS = rate(seal);
      const sealed = seal(0);
      nonce.writeUInt32LE(0, 4);
      const openMBPerS = rate(() => {
        const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
        d.setAuthTag(sealed.tag);
        d.update(sealed.out);
        d.final();
      });
      return { sealMBPerS, openMBPerS };
    },
    'p2p-start': async (m) => {
      floats = m.floats as number;
      key ??= (await generateKeyPair('Ed25519')) as unknown as PrivateKey;
      transport = libp2pTransport({
        self: role === 'sender' ? 0 : 1,
        runId: RUN,
        signature: SIGNATURE,
        size: floats,
        layout: layoutFor(floats),
        codec: m.codec as Codec,
        privateKey: key,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        maxBufferedBytes: 1 << 30,
      })({});
      await transport.start();
      return { peerId: transport.peerId, addrs: transport.addresses() };
    },
    'p2p-roster': async (m) => {
      await transport!.setRoster(m.roster as Roster);
      if (role === 'sender') await transport!.connect([1]);
      return {};
    },
    'p2p-send': async (m) => {
      const w = new Float32Array(floats);
      for (let i = 0; i < floats; i++) w[i] = Math.sin(i) * 0.1;
      // Warm up (JIT, yamux window growth) outside the timed part.
      for (let r = 1; r <= 3; r++) await transport!.send(1, r, w);
      const end = Date.now() + (m.seconds as number) * 1000;
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const gc = watchGc();
      let frames = 0;
      let wireBytes = 0;
      let failed = 0;
      // Per frame: send() call -> frame handed to the stream (encode + write), -> receipt.
      let writeMs = 0;
      let answerMs = 0;
      for (let r = 4; Date.now() < end; r++) {
        const ts = performance.now();
        let tw = ts;
        const out = await transport!.send(1, r, w, {
          onWritten: () => {
            tw = performance.now();
          },
        });
        writeMs += tw - ts;
        answerMs += performance.now() - tw;
        if (out.status === 'delivered') {
          frames++;
          wireBytes += out.bytes;
        } else failed++;
      }
      const elapsed = (performance.now() - t0) / 1000;
      const cpuMs = cpuSince(cpu0);
      const gcs = gc.stop();
      await transport!.send(1, 0xfffffff0, w); // tells the receiver to stop collecting
      return { frames, wireBytes, elapsed, failed, cpuMs, writeMs, answerMs, ...gcs };
    },
    'p2p-collect': async (m) => {
      let frames = 0;
      let bad = 0;
      let cpu0: NodeJS.CpuUsage | undefined;
      let cpuMs = 0;
      let gc: ReturnType<typeof watchGc> | undefined;
      for (let r = 1; ; r++) {
        // Collect each round; the sender's last frame uses a far round, buffered as 'future'
        // beyond the window and counted rejected, so the loop ends on a long gap instead.
        const res = await transport!.collect(r, [0], 2000);
        if (res.received.length === 0) break;
        const w = res.received[0]!.weights;
        if (Math.abs(w[1]! - Math.sin(1) * 0.1) > 1e-3) bad++;
        if (m.recycle === true) transport!.recycle(w);
        // The sender's three warm-up frames are rounds 1-3: count CPU from the first timed one.
        if (r === 3) {
          cpu0 = process.cpuUsage();
          gc = watchGc();
        } else if (r > 3 && cpu0) {
          frames++;
          cpuMs = cpuSince(cpu0);
        }
      }
      return { frames, bad, cpuMs, ...(gc?.stop() ?? { gcMs: 0, majorGcs: 0 }) };
    },
    'p2p-stop': async () => {
      await transport?.stop();
      transport = undefined;
      return {};
    },
  };
  process.on('message', (m: Msg) => {
    if (m.op === 'exit') {
      void Promise.resolve(transport?.stop()).finally(() => process.exit(0));
      return;
    }
    const h = handlers[m.op];
    if (!h) return process.send?.({ id: m.id, error: `unknown op ${m.op}` });
    h(m).then(
      (result) => process.send?.({ id: m.id, result }),
      (e: unknown) => process.send?.({ id: m.id, error: String(e) }),
    );
  });
}

const roleIndex = process.argv.indexOf('--bench-child');
if (roleIndex >= 0) void child(process.argv[roleIndex + 1] ?? 'receiver');
