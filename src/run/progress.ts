/**
 * Live progress of a launched run, one consumer of the round-record stream: on a terminal a single
 * line redrawn in place, elsewhere a plain line every tenth of the run.
 *
 *   round 12/40 | nodes 8/8 | acc 0.71 swa 0.75 | dropped 56/1234 | 12.3 s
 */
import type { RoundRecord } from '../node/metrics.js';

export class Progress {
  private readonly latestRound = new Map<number, number>();
  private readonly accuracy = new Map<number, number>();
  private readonly swa = new Map<number, number>();
  private sent = 0;
  private dropped = 0;
  private lastPrintedTenth = -1;
  private lastDraw = 0;
  private readonly t0 = performance.now();

  constructor(
    private readonly nodes: number,
    private readonly rounds: number,
    /** Where to draw; null draws nothing. */
    private readonly out: NodeJS.WriteStream | null,
    /** Put before every progress line (e.g. `node 3: ` for a node on its own). */
    private readonly prefix = '',
  ) {}

  record(r: RoundRecord): void {
    this.latestRound.set(r.node, r.round);
    if (r.accuracy !== undefined) this.accuracy.set(r.node, r.accuracy);
    if (r.swaAccuracy !== undefined) this.swa.set(r.node, r.swaAccuracy);
    this.sent += r.messages.sent;
    this.dropped += r.messages.dropped + r.messages.failed;
    this.draw(false);
  }

  line(): string {
    const rounds = [...this.latestRound.values()];
    const minRound = rounds.length < this.nodes ? 0 : Math.min(...rounds) + 1;
    const avg = (m: Map<number, number>) =>
      m.size === 0 ? '-' : ([...m.values()].reduce((a, b) => a + b, 0) / m.size).toFixed(3);
    const secs = ((performance.now() - this.t0) / 1000).toFixed(1);
    return `${this.prefix}round ${minRound}/${this.rounds} | nodes ${this.latestRound.size}/${this.nodes} | acc ${avg(this.accuracy)} swa ${avg(this.swa)} | dropped ${this.dropped}/${this.sent} | ${secs} s`;
  }

  note(msg: string): void {
    if (!this.out) return;
    if (this.out.isTTY) this.out.write(`\r\x1b[K${msg}\n`);
    else this.out.write(`${msg}\n`);
    this.draw(true);
  }

  draw(force: boolean): void {
    if (!this.out) return;
    if (this.out.isTTY) {
      const now = performance.now();
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.out.write(`\r\x1b[K${this.line()}`);
      return;
    }
    const rounds = [...this.latestRound.values()];
    const done = rounds.length < this.nodes ? 0 : Math.min(...rounds) + 1;
    const tenth = Math.floor((10 * done) / this.rounds);
    if (tenth > this.lastPrintedTenth) {
      this.lastPrintedTenth = tenth;
      this.out.write(`${this.line()}\n`);
    }
  }

  finish(): void {
    if (this.out?.isTTY) this.out.write(`\r\x1b[K${this.line()}\n`);
  }
}
