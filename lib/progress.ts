/**
 * Progress reporting for long work: a live bar (images/s, loss, ETA) on a terminal, plain
 * periodic lines otherwise (logs, CI). The stream and the clock are injected so the output is
 * testable and the library never writes to the console by itself.
 *
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * let out = "";
 * let now = 0;
 * const p = createProgress({ stream: { write: (s: string) => (out += s) }, clock: () => now, intervalMs: 1000 });
 * p.begin("epoch 1/2", 10);
 * now = 1500;
 * p.tick(5, { "img/s": 64, loss: 1.5 });
 * p.end();
 * console.log(out.includes("epoch 1/2: 5/10")); // true
 * ```
 * @module
 */

import { cliProgress } from "./deps.ts";

/** Where progress goes: anything with `write` (a terminal stream sets `isTTY`). */
export interface ProgressStream {
  /** Writes text. */
  write(text: string): unknown;
  /** True on an interactive terminal. */
  isTTY?: boolean;
  /** Terminal width. */
  columns?: number;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Output stream. */
  stream: ProgressStream;
  /** Milliseconds clock (default `performance.now`). */
  clock?: () => number;
  /** Plain mode: minimum milliseconds between lines (default 30 s). */
  intervalMs?: number;
  /** Force the bar (true) or plain lines (false); default: `stream.isTTY`. */
  tty?: boolean;
}

/** Values shown next to the count (numbers are formatted compactly). */
export type ProgressFields = Record<string, number | string>;

/** A progress reporter for one task at a time. */
export interface Progress {
  /** Starts a task of `total` units. */
  begin(label: string, total: number): void;
  /** Reports `done` units finished so far. */
  tick(done: number, fields?: ProgressFields): void;
  /** Finishes the task (prints a final line in plain mode). */
  end(): void;
  /** Prints a line without disturbing the bar. */
  line(text: string): void;
}

/**
 * Formats seconds as `1h02m`, `3m07s` or `12s`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./progress.ts";
 * console.log(formatDuration(3725), formatDuration(187), formatDuration(12.4)); // 1h02m 3m07s 12s
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

function formatFields(fields: ProgressFields): string {
  return Object.entries(fields)
    .map(([k, v]) =>
      `${k} ${
        typeof v === "number"
          ? (Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(4))
          : v
      }`
    )
    .join(" | ");
}

/**
 * Creates a reporter writing to `opts.stream`.
 *
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * const p = createProgress({ stream: { write: () => {} }, tty: false });
 * p.begin("eval", 3); p.tick(3); p.end();
 * ```
 */
export function createProgress(opts: ProgressOptions): Progress {
  const clock = opts.clock ?? (() => performance.now());
  const tty = opts.tty ?? Boolean(opts.stream.isTTY);
  return tty
    ? new BarProgress(opts.stream, clock)
    : new LineProgress(opts.stream, clock, opts.intervalMs ?? 30_000);
}

class LineProgress implements Progress {
  #label = "";
  #total = 0;
  #start = 0;
  #last = 0;
  #done = 0;
  #fields: ProgressFields = {};

  constructor(readonly stream: ProgressStream, readonly clock: () => number, readonly intervalMs: number) {}

  begin(label: string, total: number): void {
    this.#label = label;
    this.#total = total;
    this.#start = this.#last = this.clock();
    this.#done = 0;
    this.#fields = {};
  }

  tick(done: number, fields: ProgressFields = {}): void {
    this.#done = done;
    this.#fields = fields;
    const now = this.clock();
    if (now - this.#last >= this.intervalMs) {
      this.#last = now;
      this.stream.write(this.#render(now) + "\n");
    }
  }

  end(): void {
    this.stream.write(this.#render(this.clock(), true) + "\n");
  }

  line(text: string): void {
    this.stream.write(text + "\n");
  }

  #render(now: number, final = false): string {
    const pct = this.#total > 0 ? (100 * this.#done) / this.#total : 100;
    const elapsed = (now - this.#start) / 1000;
    const eta = this.#done > 0 ? (elapsed * (this.#total - this.#done)) / this.#done : NaN;
    const fields = formatFields(this.#fields);
    const time = final ? `took ${formatDuration(elapsed)}` : `ETA ${formatDuration(eta)}`;
    return `${this.#label}: ${this.#done}/${this.#total} (${pct.toFixed(0)}%)${
      fields ? " | " + fields : ""
    } | ${time}`;
  }
}

class BarProgress implements Progress {
  #bar: InstanceType<typeof cliProgress.SingleBar> | null = null;
  #start = 0;
  #total = 0;

  constructor(readonly stream: ProgressStream, readonly clock: () => number) {}

  begin(label: string, total: number): void {
    this.#start = this.clock();
    this.#total = total;
    this.#bar = new cliProgress.SingleBar(
      {
        stream: this.stream as never,
        format: `${label} {bar} {value}/{total} | {fields} | ETA {remaining}`,
        barsize: 30,
        hideCursor: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bar.start(total, 0, { fields: "", remaining: "?" });
  }

  tick(done: number, fields: ProgressFields = {}): void {
    const elapsed = (this.clock() - this.#start) / 1000;
    const eta = done > 0 ? (elapsed * (this.#total - done)) / done : NaN;
    this.#bar?.update(done, { fields: formatFields(fields), remaining: formatDuration(eta) });
  }

  end(): void {
    this.#bar?.stop();
    this.#bar = null;
  }

  line(text: string): void {
    // cli-progress redraws in place; a line written between redraws must clear the bar line.
    this.stream.write(`\r\x1b[K${text}\n`);
  }
}
