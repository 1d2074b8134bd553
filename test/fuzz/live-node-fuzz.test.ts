/**
 * Issue 5: 10,000 random and mutated frames (frames.ts: random bytes, bit flips, truncations,
 * extensions, header rewrites, NaN/Inf payloads with the checksum recomputed, codec swaps, lying
 * length prefixes) sent to a live node over real libp2p streams, many frames per stream and a few
 * streams at once, while it runs rounds whose only neighbour is the attacker; plus connection
 * attempts from a peer outside the roster. The node must not crash, must count every frame it
 * delimits as rejected (the books are kept independently with frames.ts's receiverView), answer
 * each with a rejection receipt, and end with weights bit-identical to a twin that heard nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';
import type { RejectReason } from '../../src/errors.js';
import { MAX_CONSECUTIVE_REJECTS } from '../../src/net/libp2p/receiver.js';
import { until } from '../net/helpers.js';
import {
  type FuzzFrame,
  frameFuzzer,
  lengthPrefix,
  receiverView,
  referenceDecode,
} from './frames.js';
import {
  ATTACKER,
  type LiveNode,
  type NodeRun,
  RECEIPT_OK,
  RECEIPT_REJECTED,
  type StreamOutcome,
  sendStream,
  startLiveNode,
} from './live-node.js';

const SEED = 909;
const ROUNDS = 4;
const FRAMES = 10_000;
/** Frames written back to back on one stream (at most; a stream-ending frame closes it early). */
const PER_STREAM = 50;
/** Streams in flight at once from the attacker. */
const PARALLEL = 8;
const OUTSIDER_PER_ROUND = 2;

interface Planned {
  readonly chunks: Uint8Array[];
  readonly frames: number;
  readonly want: StreamOutcome;
  /** Rejections the node must count for this stream. */
  readonly counted: number;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

describe('a live node under 10,000 fuzzed frames (issue 5)', () => {
  let live: LiveNode;
  let twin: NodeRun;
  let run: NodeRun;
  let generated = 0;
  let rerolled = 0;
  let delimited = 0;
  let outsiderAttempts = 0;
  let streamsSent = 0;
  let barrageMs = 0;
  const families = new Map<string, number>();
  const mismatches: string[] = [];

  /**
   * This round's share of the frames as streams. A frame that a node would accept (a bit flip in
   * the round or mass, a random payload without NaN) is not an attack: it is drawn again.
   */
  function plan(round: number, from: number, to: number): Planned[] {
    const { spec } = live;
    const gen = frameFuzzer({ ...spec, sender: ATTACKER, round });
    const streams: Planned[] = [];
    let chunks: Uint8Array[] = [];
    let frames = 0;
    const close = () => {
      if (frames === 0) return;
      const view = receiverView(concat(chunks), spec.maxBytes);
      // The node resets a stream at its MAX_CONSECUTIVE_REJECTS-th rejected frame in a row (every
      // frame here is rejected): what follows is neither delimited nor counted.
      const capped = view.frames.length >= MAX_CONSECUTIVE_REJECTS;
      const delimitedHere = capped ? MAX_CONSECUTIVE_REJECTS : view.frames.length;
      streams.push({
        chunks,
        frames,
        want: {
          receipts: view.frames.slice(0, delimitedHere).map(() => RECEIPT_REJECTED),
          reset: capped || view.error !== undefined,
        },
        counted: delimitedHere + (view.error && !capped ? 1 : 0),
      });
      chunks = [];
      frames = 0;
    };
    for (let i = from; i < to; i++) {
      let f: FuzzFrame;
      let bytes: Uint8Array[];
      let ends: boolean;
      for (let attempt = 0; ; attempt++) {
        const rng = Rng.from(SEED, 'live-fuzz', i, attempt);
        f = gen.next(rng, gen.families[i % gen.families.length]);
        bytes = f.raw ? [f.bytes] : [lengthPrefix(f.bytes.length), f.bytes];
        const view = receiverView(concat(bytes), spec.maxBytes);
        const acceptable = view.frames.some((fr) => {
          const r = referenceDecode(fr, spec);
          return r.ok && r.sender === ATTACKER;
        });
        ends = view.error !== undefined || f.raw;
        if (!acceptable) break;
        rerolled++;
      }
      families.set(f.kind, (families.get(f.kind) ?? 0) + 1);
      chunks.push(...bytes);
      frames++;
      generated++;
      // A frame that breaks the framing (or brings its own prefix) must be a stream's last.
      if (ends || frames === PER_STREAM) close();
    }
    close();
    return streams;
  }

  before(async () => {
    // More streams at once than an honest peer opens (4): room for all of them, and for a stream
    // the node has not yet seen end when the attacker's next one arrives.
    live = await startLiveNode({ rounds: ROUNDS, seed: 5, maxStreamsPerPeer: 2 * PARALLEL });
    twin = await live.twin();
    const perRound = FRAMES / ROUNDS;
    run = await live.run(async (k) => {
      const streams = plan(k, k * perRound, (k + 1) * perRound);
      streamsSent += streams.length;
      const t0 = performance.now();
      const expected = streams.reduce((s, p) => s + p.counted, 0);
      const start = Object.values(live.counts.rejected).reduce((a, b) => a + b, 0);
      let next = 0;
      const worker = async () => {
        for (let s = next++; s < streams.length; s = next++) {
          const p = streams[s]!;
          const got = await sendStream(live.attacker, live.victimAddr, p.chunks);
          // A reset discards receipts still queued at the receiver: then the ones that arrived
          // must be a prefix of the expected ones (each frame is still counted; see below).
          const receipts = p.want.reset
            ? got.receipts.slice(0, p.want.receipts.length)
            : got.receipts;
          const ok =
            got.reset === p.want.reset &&
            receipts.length === got.receipts.length &&
            (p.want.reset || got.receipts.length === p.want.receipts.length) &&
            receipts.every((r, j) => r === p.want.receipts[j]);
          if (!ok) {
            mismatches.push(
              `round ${k} stream ${s}: got ${JSON.stringify(got)}, want ${JSON.stringify(p.want)}`,
            );
          }
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      barrageMs += performance.now() - t0;
      for (let i = 0; i < OUTSIDER_PER_ROUND; i++) {
        await until(
          () => live.outsider.getConnections().length === 0,
          'the refused connection to close',
        );
        // Even a well-formed frame from outside the roster is refused with its connection.
        const frame = live.frame(k);
        await sendStream(live.outsider, live.victimAddr, [lengthPrefix(frame.length), frame]);
        outsiderAttempts++;
      }
      delimited += expected;
      const target = start + expected + OUTSIDER_PER_ROUND;
      // Counted before the receipt or reset reached us; the wait only guards against a lag. A
      // shortfall is left to the assertions below, which say what was counted instead.
      await until(
        () => Object.values(live.counts.rejected).reduce((a, b) => a + b, 0) >= target,
        `round ${k}'s ${expected} rejections counted`,
        10_000,
      ).catch(() => {});
    });
  });

  after(async () => {
    await live?.close();
  });

  it('sent 10,000 frames of every mutation family', (t) => {
    // Figures for the record (not assertions): what went over the wire and how fast.
    t.diagnostic(
      `${generated} frames (${rerolled} redrawn) on ${streamsSent} streams, ${delimited} delimited by the node, ` +
        `${outsiderAttempts} outsider connections; sending took ${barrageMs.toFixed(0)} ms ` +
        `(${((generated / barrageMs) * 1000).toFixed(0)} frames/s)`,
    );
    assert.equal(generated, FRAMES);
    assert.ok(families.size >= 20, [...families.keys()].join(', '));
    // Redraws are the rare mutations that leave a valid frame; they must stay rare.
    assert.ok(rerolled < FRAMES / 20, `${rerolled} redrawn`);
  });

  it('answered every frame with a rejection, in order, and reset only broken streams', () => {
    assert.deepEqual(mismatches, []);
  });

  it('counted every frame it delimited as rejected, by reason, and nothing else', () => {
    const byReason: Partial<Record<RejectReason, number>> = {};
    for (const rec of run.records) {
      for (const [reason, n] of Object.entries(rec.rejectedBy)) {
        byReason[reason as RejectReason] = (byReason[reason as RejectReason] ?? 0) + n;
      }
    }
    const total = Object.values(byReason).reduce((a, b) => a + b, 0);
    assert.ok(delimited >= FRAMES, `${delimited} frames delimited`);
    // Frames refused at the connection level (the outsider) are counted apart.
    assert.equal(byReason['unknown-sender'], outsiderAttempts);
    assert.equal(total - outsiderAttempts, delimited, JSON.stringify(byReason));
    assert.equal(
      run.records.reduce((s, r) => s + r.messages.rejected, 0),
      delimited + outsiderAttempts,
    );
    // The fuzzing reached the deep checks, not only the first ones.
    for (const reason of [
      'oversized',
      'truncated',
      'bad-magic',
      'bad-version',
      'unknown-codec',
      'wrong-run',
      'wrong-signature',
      'wrong-length',
      'bad-checksum',
      'non-finite',
      'sender-mismatch',
    ] as const) {
      assert.ok((byReason[reason] ?? 0) > 0, `no frame rejected as ${reason}`);
    }
    for (const r of run.records) {
      assert.equal(r.messages.received, 0);
      assert.equal(r.messages.late, 0);
      assert.deepEqual(r.heard, []);
    }
  });

  it('survived with weights bit-identical to a twin that heard nothing', async () => {
    assert.equal(run.result.roundsCompleted, ROUNDS);
    for (let k = 0; k < ROUNDS; k++) {
      assert.ok(sameBits(run.snapshots[k]!, twin.snapshots[k]!), `weights at round ${k}`);
    }
    assert.ok(sameBits(run.result.weights, twin.result.weights), 'final weights');
    assert.ok(!sameBits(twin.snapshots[0]!, twin.result.weights), 'training moved the weights');
    // And it still serves: a valid frame for the next round is accepted.
    const got = await sendStream(live.attacker, live.victimAddr, [
      lengthPrefix(live.frame(ROUNDS).length),
      live.frame(ROUNDS),
    ]);
    assert.deepEqual(got, { receipts: [RECEIPT_OK], reset: false });
  });
});
