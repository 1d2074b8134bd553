/** Small statistics the benchmarks print: mean, quantiles, rounding for JSON lines. */

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** The q-quantile by the nearest-rank rule (a value that occurred, never interpolated). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export function round(x: number, digits = 1): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}

/** Median, p90 and max of a sample, rounded. */
export function spread(xs: readonly number[], digits = 1) {
  return {
    median: round(quantile(xs, 0.5), digits),
    p90: round(quantile(xs, 0.9), digits),
    max: round(xs.length ? Math.max(...xs) : Number.NaN, digits),
  };
}
