/**
 * Round deadlines that follow the run: how long a node waits for its neighbours' weights is a high
 * percentile of how long recent rounds actually waited, times a margin, plus slack, never more than
 * the configured `gossip.deadlineMs`. A loaded machine then costs a round what it really needs,
 * and one lost frame costs a fraction of a second instead of the whole configured deadline.
 *
 *   const d = new AdaptiveDeadline(cfg.gossip.deadlineMs);
 *   const ms = d.current();                // before the collect
 *   d.observe(waitedMs, ended === 'deadline');
 *
 * A wait that ended at its deadline is observed at that deadline (the real wait was at least
 * that long): when more than one round in ten hits the deadline the percentile is a deadline, so
 * the next one is longer, up to the cap. Wall-clock driven, so only real runs use it: the
 * simulator keeps the configured deadline and replays exactly.
 */
export interface AdaptiveDeadlineOptions {
  /** Rounds remembered. Default 30. */
  readonly window?: number;
  /** Percentile of the remembered waits. Default 0.9. */
  readonly percentile?: number;
  /** Margin on the percentile. Default 2. */
  readonly factor?: number;
  /** Added to every deadline, and the shortest deadline there is (ms). Default 1000. */
  readonly slackMs?: number;
  /** Rounds observed before the deadline adapts (until then: the cap). Default 10. */
  readonly warmup?: number;
}

export class AdaptiveDeadline {
  private readonly waits: number[] = [];
  private readonly window: number;
  private readonly percentile: number;
  private readonly factor: number;
  private readonly slackMs: number;
  private readonly warmup: number;

  constructor(
    readonly capMs: number,
    opts: AdaptiveDeadlineOptions = {},
  ) {
    this.window = opts.window ?? 30;
    this.percentile = opts.percentile ?? 0.9;
    this.factor = opts.factor ?? 2;
    this.slackMs = opts.slackMs ?? 1000;
    this.warmup = Math.min(opts.warmup ?? 10, this.window);
  }

  /** The deadline for the next wait (ms). */
  current(): number {
    if (this.waits.length < this.warmup) return this.capMs;
    const sorted = [...this.waits].sort((a, b) => a - b);
    const p = sorted[Math.min(sorted.length - 1, Math.floor(this.percentile * sorted.length))]!;
    return Math.min(this.capMs, Math.ceil(this.factor * p + this.slackMs));
  }

  /** One round's wait: how long it waited, and whether it ended at its deadline. */
  observe(waitedMs: number, hitDeadline: boolean, deadlineMs: number): void {
    this.waits.push(hitDeadline ? Math.max(waitedMs, deadlineMs) : waitedMs);
    if (this.waits.length > this.window) this.waits.shift();
  }
}
