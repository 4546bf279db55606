/** Small statistics helpers for the bench. */

/** The q-quantile (0..1) of an ascending array (nearest rank). */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** The median of unsorted values. */
export function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 0.5);
}

/** Median, min and max of runs. */
export function summary(runs: number[]): { med: number; min: number; max: number } {
  return { med: median(runs), min: Math.min(...runs), max: Math.max(...runs) };
}

/** Formats a number with a sensible number of digits. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '—';
  if (Math.abs(x) >= 100) return Math.round(x).toString();
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
