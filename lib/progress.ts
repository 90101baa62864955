/**
 * Progress reporting for long work: a live line (count, loss, top-1, images/s, ETA, and the whole
 * run's elapsed time and ETA) redrawn in place on a terminal, plain periodic lines otherwise (logs,
 * CI). The terminal line always fits the terminal's width: the bar shrinks first, then the least
 * important fields go. Nothing is drawn by timers, so nothing is redrawn after {@link Progress.end}.
 * The stream and the clock are injected so the output is testable and the library never writes to
 * the console by itself.
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

/** Where progress goes: anything with `write` (a terminal stream sets `isTTY`). */
export interface ProgressStream {
  /** Writes text. */
  write(text: string): unknown;
  /** True on an interactive terminal. */
  isTTY?: boolean;
  /** Terminal width (read at every redraw, so resizing is followed; default 80). */
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
  /** Terminal mode: minimum milliseconds between redraws (default 100). */
  redrawMs?: number;
  /** Force the terminal line (true) or plain lines (false); default: `stream.isTTY`. */
  tty?: boolean;
}

/**
 * Values shown next to the count. Numbers are formatted compactly; strings are shown as given
 * (e.g. `"45.3%"`). On a narrow terminal the fields named in {@link OPTIONAL_FIELDS} go first.
 */
export type ProgressFields = Record<string, number | string>;

/** Field names dropped first when a terminal is too narrow (after the bar). */
export const OPTIONAL_FIELDS: readonly string[] = ["lr"];

/** Where a task sits in a longer run (epochs of a training run), for the run's elapsed time and ETA. */
export interface RunPosition {
  /** Run steps finished before this task's unit 0 (`tick(done)` is run step `offset + done`). */
  offset: number;
  /** Steps of the whole run. */
  steps: number;
  /** Seconds the run had already taken before this process (a resumed run; default 0). */
  elapsedBefore?: number;
}

/** A progress reporter for one task at a time. */
export interface Progress {
  /** Starts a task of `total` units, optionally part of a longer run. */
  begin(label: string, total: number, run?: RunPosition): void;
  /** Reports `done` units finished so far. */
  tick(done: number, fields?: ProgressFields): void;
  /** Finishes the task: its final state stays on screen as one line ending in a newline. */
  end(): void;
  /** Prints a line without disturbing the live line. */
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

function formatValue(v: number | string): string {
  if (typeof v === "string") return v;
  if (Number.isInteger(v) || Math.abs(v) >= 100) return v.toFixed(0);
  return v.toPrecision(4);
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
    ? new LiveProgress(opts.stream, clock, opts.redrawMs ?? 100)
    : new LineProgress(opts.stream, clock, opts.intervalMs ?? 30_000);
}

/** Task and run timing shared by both modes. */
class Timing {
  label = "";
  total = 0;
  start = 0;
  done = 0;
  fields: ProgressFields = {};
  run: RunPosition | null = null;
  // The run's rate is measured from the first step this process took (the time of that task's
  // begin) so evaluation passes between epochs count in the run's ETA.
  #runAnchor: { time: number; step: number } | null = null;
  #pendingAnchor: number | null = null;
  #before = 0;

  constructor(readonly clock: () => number) {}

  begin(label: string, total: number, run?: RunPosition): void {
    this.label = label;
    this.total = total;
    this.start = this.clock();
    this.done = 0;
    this.fields = {};
    this.run = run ?? null;
    if (run && !this.#runAnchor && this.#pendingAnchor === null) {
      this.#pendingAnchor = this.start;
      this.#before = run.elapsedBefore ?? 0;
    }
  }

  tick(done: number, fields: ProgressFields): void {
    if (this.run && this.#pendingAnchor !== null) {
      this.#runAnchor = { time: this.#pendingAnchor, step: this.run.offset + done - 1 };
      this.#pendingAnchor = null;
    }
    this.done = done;
    this.fields = fields;
  }

  /** Seconds since this task began. */
  elapsed(now: number): number {
    return (now - this.start) / 1000;
  }

  /** Seconds left in this task. */
  eta(now: number): number {
    return this.done > 0 ? (this.elapsed(now) * (this.total - this.done)) / this.done : NaN;
  }

  /** The run's elapsed seconds and ETA, or null outside a run. */
  runTimes(now: number): { elapsed: number; eta: number } | null {
    if (!this.run) return null;
    const a = this.#runAnchor;
    const elapsed = this.#before + (a ? (now - a.time) / 1000 : (now - (this.#pendingAnchor ?? now)) / 1000);
    const step = this.run.offset + this.done;
    const eta = a && step > a.step
      ? ((now - a.time) / 1000 / (step - a.step)) * (this.run.steps - step)
      : NaN;
    return { elapsed, eta };
  }
}

class LineProgress implements Progress {
  #t: Timing;
  #last = 0;

  constructor(readonly stream: ProgressStream, clock: () => number, readonly intervalMs: number) {
    this.#t = new Timing(clock);
  }

  begin(label: string, total: number, run?: RunPosition): void {
    this.#t.begin(label, total, run);
    this.#last = this.#t.start;
  }

  tick(done: number, fields: ProgressFields = {}): void {
    this.#t.tick(done, fields);
    const now = this.#t.clock();
    if (now - this.#last >= this.intervalMs) {
      this.#last = now;
      this.stream.write(this.#render(now) + "\n");
    }
  }

  end(): void {
    this.stream.write(this.#render(this.#t.clock(), true) + "\n");
  }

  line(text: string): void {
    this.stream.write(text + "\n");
  }

  #render(now: number, final = false): string {
    const t = this.#t;
    const pct = t.total > 0 ? (100 * t.done) / t.total : 100;
    const fields = Object.entries(t.fields).map(([k, v]) => `${k} ${formatValue(v)}`);
    const time = final ? `took ${formatDuration(t.elapsed(now))}` : `ETA ${formatDuration(t.eta(now))}`;
    const run = t.runTimes(now);
    const runPart = run
      ? ` | run ${formatDuration(run.elapsed)} elapsed, ETA ${
        formatDuration(final && run.eta === 0 ? 0 : run.eta)
      }`
      : "";
    return `${t.label}: ${t.done}/${t.total} (${pct.toFixed(0)}%)${
      fields.length ? " | " + fields.join(" | ") : ""
    } | ${time}${runPart}`;
  }
}

/**
 * One piece of the terminal line: its texts from the fullest to the shortest. While the line is
 * too wide, the piece whose next step has the lowest rank takes it: `ranks[i]` is the rank of going
 * from `texts[i]` to the next text (or, after the last, to nothing). No ranks: always shown.
 */
interface Part {
  texts: string[];
  ranks: number[];
}

const BAR_MIN = 5;
const BAR_MAX = 30;

/**
 * Lays out the terminal line for `columns`: the bar as wide as the rest allows (up to 30 cells,
 * gone first), then optional parts shortened or dropped by rank; required parts always stay. Never wider than `columns - 1` (a full-width line wraps on some terminals).
 */
function layout(head: string, parts: Part[], progress: number, columns: number): string {
  const width = Math.max(columns - 1, 10);
  const level = parts.map(() => 0); // index into texts; texts.length = dropped
  const text = () =>
    [head, ...parts.flatMap((p, i) => (level[i] < p.texts.length ? [p.texts[level[i]]] : []))].join(" ");
  while (text().length > width) {
    let pick = -1;
    const rank = (i: number) => parts[i].ranks[level[i]] ?? Infinity;
    for (let i = 0; i < parts.length; i++) {
      if (rank(i) < Infinity && (pick < 0 || rank(i) < rank(pick))) pick = i;
    }
    if (pick < 0) break;
    level[pick]++;
  }
  let line = text();
  const room = width - line.length - 3; // " [" ... "]"
  if (room >= BAR_MIN && level.every((l) => l === 0)) {
    const cells = Math.min(BAR_MAX, room);
    const filled = Math.round(Math.min(Math.max(progress, 0), 1) * cells);
    line = line.replace(head, `${head} [${"#".repeat(filled)}${"-".repeat(cells - filled)}]`);
  }
  return line.length > width ? line.slice(0, width - 1) + "…" : line;
}

class LiveProgress implements Progress {
  #t: Timing;
  #active = false;
  #drawn = false;
  #lastDraw = -Infinity;

  constructor(readonly stream: ProgressStream, clock: () => number, readonly redrawMs: number) {
    this.#t = new Timing(clock);
  }

  begin(label: string, total: number, run?: RunPosition): void {
    if (this.#active) this.end();
    this.#t.begin(label, total, run);
    this.#active = true;
    this.#draw(this.#t.start);
  }

  tick(done: number, fields: ProgressFields = {}): void {
    this.#t.tick(done, fields);
    const now = this.#t.clock();
    if (now - this.#lastDraw >= this.redrawMs || done >= this.#t.total) this.#draw(now);
  }

  end(): void {
    if (!this.#active) return;
    this.#active = false;
    this.stream.write(`\r\x1b[K${this.#render(this.#t.clock(), true)}\n`);
    this.#drawn = false;
  }

  line(text: string): void {
    // The live line is cleared, the text printed on its own line, and the live line redrawn below it.
    this.stream.write(`${this.#drawn ? "\r\x1b[K" : ""}${text}\n`);
    this.#drawn = false;
    if (this.#active) this.#draw(this.#t.clock());
  }

  #draw(now: number): void {
    this.#lastDraw = now;
    this.stream.write(`\r\x1b[K${this.#render(now, false)}`);
    this.#drawn = true;
  }

  #render(now: number, final: boolean): string {
    const t = this.#t;
    const parts: Part[] = [{ texts: [`${t.done}/${t.total}`], ranks: [] }];
    for (const [k, v] of Object.entries(t.fields)) {
      const text = k === "img/s" ? `${formatValue(v)} img/s` : `${k} ${formatValue(v)}`;
      parts.push({ texts: [text], ranks: OPTIONAL_FIELDS.includes(k) ? [2] : [] });
    }
    parts.push({
      texts: [final ? `took ${formatDuration(t.elapsed(now))}` : `ETA ${formatDuration(t.eta(now))}`],
      ranks: [],
    });
    const run = t.runTimes(now);
    if (run) {
      const eta = formatDuration(run.eta);
      parts.push({
        texts: [`| run ${formatDuration(run.elapsed)} elapsed, ETA ${eta}`, `| run ETA ${eta}`],
        ranks: [1, 3],
      });
    }
    const columns = this.stream.columns && this.stream.columns > 0 ? this.stream.columns : 80;
    return layout(t.label, parts, t.total > 0 ? t.done / t.total : 1, columns);
  }
}
