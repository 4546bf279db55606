/**
 * Transfer progress on stderr: a bar redrawn in place (bytes, percentage,
 * rate, ETA) when stderr is a terminal, plain periodic lines otherwise, so
 * logs and pipes never see carriage returns.
 */

/** Where progress goes: stderr, or a stand-in with the same shape. */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Options of a Progress. */
export interface ProgressOptions {
  /** What is moving, e.g. 'sending photo.jpg'. */
  label: string;
  /** Total bytes expected. */
  total: number;
  /** Default: process.stderr. */
  output?: ProgressOutput;
  /** Draw a bar (default: whether `output` is a TTY). */
  tty?: boolean;
  /** Plain mode: ms between lines (default 1000). */
  lineIntervalMs?: number;
}

const BAR_REDRAW_MS = 100;
/** The rate is measured over this window, so it follows changes without jittering. */
const RATE_WINDOW_MS = 2000;

/** Formats a byte count with a binary unit: `512 B`, `1.5 KiB`, `64.0 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Formats seconds as `m:ss` or `h:mm:ss`; `--:--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Progress of one transfer. Call `update` as bytes move, then `done` or `abort`. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #out: ProgressOutput;
  readonly #tty: boolean;
  readonly #start = performance.now();
  readonly #timer: NodeJS.Timeout;
  /** (time, bytes) samples of the last RATE_WINDOW_MS. */
  readonly #samples: Array<[number, number]> = [];
  #bytes = 0;
  #finished = false;

  constructor(opts: ProgressOptions) {
    this.#label = opts.label;
    this.#total = opts.total;
    this.#out = opts.output ?? process.stderr;
    this.#tty = opts.tty ?? this.#out.isTTY === true;
    this.#samples.push([this.#start, 0]);
    const every = this.#tty ? BAR_REDRAW_MS : (opts.lineIntervalMs ?? 1000);
    this.#timer = setInterval(() => this.#render(), every);
    this.#timer.unref();
    if (this.#tty) this.#render();
  }

  /** Bytes moved so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records that `bytes` in total have moved. */
  update(bytes: number): void {
    this.#bytes = bytes;
  }

  /** Bytes per second over the last couple of seconds (or since the start). */
  rate(now = performance.now()): number {
    const s = this.#samples;
    s.push([now, this.#bytes]);
    while (s.length > 2 && now - s[1]![0] >= RATE_WINDOW_MS) s.shift();
    const [t0, b0] = s[0]!;
    const dt = (now - t0) / 1000;
    return dt > 0 ? (this.#bytes - b0) / dt : 0;
  }

  /** Draws the final state: a full bar (TTY) or a summary line, with the average rate. */
  done(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#timer);
    const secs = (performance.now() - this.#start) / 1000;
    const avg = secs > 0 ? this.#bytes / secs : 0;
    const tail = `${formatBytes(this.#bytes)} in ${secs.toFixed(1)} s, ${formatBytes(avg)}/s`;
    if (this.#tty) this.#out.write(`\r${this.#line(`${formatBytes(avg)}/s`, `in ${secs.toFixed(1)} s`)}\u001b[K\n`);
    else this.#out.write(`peersock: ${this.#label}: ${tail}\n`);
  }

  /** Stops drawing (the transfer failed); ends the bar's line so the error starts on its own. */
  abort(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#timer);
    if (this.#tty) this.#out.write('\n');
  }

  #render(): void {
    if (this.#finished) return;
    const rate = this.rate();
    const eta = rate > 0 ? formatDuration((this.#total - this.#bytes) / rate) : '--:--';
    if (this.#tty) {
      this.#out.write(`\r${this.#line(`${formatBytes(rate)}/s`, `ETA ${eta}`)}\u001b[K`);
    } else {
      const pct = this.#total > 0 ? Math.floor((this.#bytes / this.#total) * 100) : 100;
      this.#out.write(`peersock: ${this.#label}: ${formatBytes(this.#bytes)} of ${formatBytes(this.#total)} (${pct}%), ${formatBytes(rate)}/s, ETA ${eta}\n`);
    }
  }

  /** One bar line fitted to the terminal width: label, bar, percentage, bytes, rate, last field. */
  #line(rate: string, last: string): string {
    const frac = this.#total > 0 ? Math.min(1, this.#bytes / this.#total) : 1;
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    const info = ` ${pct}  ${formatBytes(this.#bytes)} / ${formatBytes(this.#total)}  ${rate}  ${last}`;
    const width = Math.max(40, (this.#out.columns ?? 80) - 1);
    let label = this.#label;
    let barWidth = width - label.length - info.length - 3;
    if (barWidth < 10) {
      // Narrow terminal: shorten the label before the bar.
      label = label.slice(0, Math.max(0, label.length - (10 - barWidth)));
      barWidth = 10;
    }
    const filled = Math.round(frac * barWidth);
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${info}`.slice(0, width);
  }
}
