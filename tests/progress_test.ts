/**
 * Progress output rendered onto fake terminals of fixed widths (an injected clock and stream): what
 * the screen shows at 60-200 columns, and that an interrupted run leaves the screen clean.
 */
import assert from "node:assert/strict";
import { resolveConfig } from "../lib/config.ts";
import type { LabelledBatch, TrainableModel } from "../lib/engines/engine.ts";
import type { Graph } from "../lib/graph.ts";
import { createProgress, formatDuration } from "../lib/progress.ts";
import { type EvalBatchSource, train, type TrainBatchSource } from "../lib/trainer.ts";

/**
 * A minimal terminal: `\r` returns to column 0, `ESC[K` erases to the end of the line, `\n` moves
 * to a new line, other characters overwrite. Returns the screen's lines and the cursor column.
 */
function screen(out: string): { lines: string[]; col: number } {
  const lines: string[] = [""];
  let col = 0;
  for (let i = 0; i < out.length; i++) {
    const ch = out[i];
    const row = lines.length - 1;
    if (ch === "\r") col = 0;
    else if (ch === "\n") {
      lines.push("");
      col = 0;
    } else if (out.startsWith("\x1b[K", i)) {
      lines[row] = lines[row].slice(0, col);
      i += 2;
    } else {
      lines[row] = lines[row].slice(0, col).padEnd(col) + ch + lines[row].slice(col + 1);
      col++;
    }
  }
  return { lines, col };
}

/** A terminal of `columns` width and a clock the test moves. */
function fakeTerminal(columns: number) {
  const t = { out: "", now: 0 };
  const progress = createProgress({
    stream: { write: (s: string) => (t.out += s), isTTY: true, columns },
    clock: () => t.now,
  });
  return { t, progress, live: () => screen(t.out).lines.at(-1)! };
}

/** Epoch 3 of 30 (391 steps each) after 120 steps, as the trainer reports it. */
function midRun(columns: number) {
  const term = fakeTerminal(columns);
  const { t, progress } = term;
  // Two epochs took 10 minutes in an earlier process (a resumed run).
  progress.begin("epoch 3/30", 391, { offset: 2 * 391, steps: 30 * 391, elapsedBefore: 600 });
  for (let step = 1; step <= 120; step++) {
    t.now = step * 250;
    progress.tick(step, { loss: 1.23456, "top-1": "45.6%", "img/s": 512.3, lr: "0.1" });
  }
  return term;
}

for (const columns of [80, 100, 120, 200]) {
  Deno.test(`at ${columns} columns the live line keeps epoch, step, loss, top-1 %, img/s and ETA and fits`, () => {
    const line = midRun(columns).live();
    assert.ok(line.length <= columns - 1, `${line.length} > ${columns - 1}: ${line}`);
    for (const part of ["epoch 3/30", "120/391", "loss 1.235", "top-1 45.6%", "512 img/s", "ETA 1m08s"]) {
      assert.ok(line.includes(part), `"${part}" missing at ${columns} columns: ${line}`);
    }
    // The run's ETA: 120 steps in 30 s, 30*391 - (782 + 120) steps left.
    assert.ok(
      line.includes(`run ETA ${formatDuration((30 / 120) * (30 * 391 - 902))}`) || line.includes("ETA 45m"),
    );
    assert.match(line, /run .*ETA 45m/, line);
  });
}

Deno.test("the bar shrinks first, then the run's elapsed time, then the learning rate", () => {
  const at = (c: number) => midRun(c).live();
  const bar = (line: string) => line.match(/\[([#-]*)\]/)?.[1].length ?? 0;
  assert.equal(bar(at(200)), 30, at(200));
  assert.ok(bar(at(120)) > 0 && bar(at(120)) < 30, at(120));
  assert.match(at(120), /512 img\/s lr 0\.1 ETA 1m08s \| run 10m30s elapsed, ETA 45m/);
  assert.equal(bar(at(100)), 0, at(100));
  assert.match(at(100), /512 img\/s lr 0\.1 ETA 1m08s \| run ETA 45m/);
  assert.equal(bar(at(80)), 0);
  assert.doesNotMatch(at(80), /lr |elapsed/);
  assert.match(at(80), /\| run ETA 45m/);
  // Narrower than the required parts: cut, never wrapped.
  const narrow = at(40);
  assert.ok(narrow.length <= 39 && narrow.startsWith("epoch 3/30 120/391"), narrow);
});

Deno.test("the terminal width is read at each redraw (a resized terminal)", () => {
  const stream = {
    out: "",
    columns: 200,
    isTTY: true,
    write(s: string) {
      this.out += s;
    },
  };
  let now = 0;
  const p = createProgress({ stream, clock: () => now });
  p.begin("epoch 1/1", 10, { offset: 0, steps: 10 });
  now = 1000;
  p.tick(1, { loss: 1 });
  stream.columns = 30;
  now = 2000;
  p.tick(2, { loss: 1 });
  assert.ok(screen(stream.out).lines.at(-1)!.length <= 29);
});

Deno.test("lines printed during a task go above the live line; end() leaves the final state and a newline", () => {
  const { t, progress } = fakeTerminal(100);
  progress.begin("epoch 1/2", 4, { offset: 0, steps: 8 });
  t.now = 1000;
  progress.tick(1, { loss: 2 });
  progress.line("teacher  test top-1 93.00%");
  t.now = 4000;
  progress.tick(4, { loss: 1.5 });
  progress.end();
  progress.line("epoch 1: loss 1.5000");
  const s = screen(t.out);
  assert.deepEqual(s.lines.slice(0, 1), ["teacher  test top-1 93.00%"]);
  assert.match(s.lines[1], /^epoch 1\/2 \[#+\] 4\/4 loss 1\.500 took 4s \| run 4s elapsed, ETA 4s$/);
  assert.equal(s.lines[2], "epoch 1: loss 1.5000");
  assert.deepEqual(s.lines.slice(3), [""], "the cursor is on a fresh line");
});

Deno.test("redraws are throttled by the clock, never by timers", () => {
  const { t, progress } = fakeTerminal(100);
  progress.begin("eval", 1000);
  const before = t.out.length;
  for (let i = 1; i < 100; i++) {
    t.now = i; // 99 ticks within 99 ms
    progress.tick(i);
  }
  assert.ok((t.out.match(/\r/g) ?? []).length <= 3, "at most a redraw or two in 100 ms");
  t.now = 250;
  progress.tick(100);
  assert.ok(t.out.length > before && screen(t.out).lines.at(-1)!.includes("100/1000"));
});

Deno.test("plain progress prints periodic lines with rate fields and ETA from the injected clock", () => {
  let out = "";
  let now = 0;
  const text = (): string => out; // read through a function: assert.equal narrows `out` otherwise
  const p = createProgress({
    stream: { write: (s: string) => (out += s) },
    clock: () => now,
    intervalMs: 10_000,
  });
  p.begin("epoch 1/3", 100);
  now = 5_000;
  p.tick(10, { "img/s": 640, loss: 2.345678 });
  assert.equal(text(), "", "no line before the interval");
  now = 20_000;
  p.tick(50, { "img/s": 640, loss: 2.345678 });
  assert.equal(text(), "epoch 1/3: 50/100 (50%) | img/s 640 | loss 2.346 | ETA 20s\n");
  now = 40_000;
  p.tick(100, { "img/s": 640, loss: 1.5 });
  p.end();
  assert.ok(text().endsWith("epoch 1/3: 100/100 (100%) | img/s 640 | loss 1.500 | took 40s\n"), text());
});

Deno.test("plain progress of a run adds the run's elapsed time and ETA", () => {
  let out = "";
  let now = 0;
  const p = createProgress({ stream: { write: (s: string) => (out += s) }, clock: () => now, intervalMs: 0 });
  p.begin("epoch 2/2", 10, { offset: 10, steps: 20, elapsedBefore: 60 });
  for (let i = 1; i <= 5; i++) {
    now = i * 1000;
    p.tick(i, { lr: "0.01" });
  }
  out = out.split("\n").at(-2) + "\n";
  assert.equal(out, "epoch 2/2: 5/10 (50%) | lr 0.01 | ETA 5s | run 1m05s elapsed, ETA 5s\n");
});

Deno.test("durations format compactly", () => {
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(59.6), "1m00s");
  assert.equal(formatDuration(NaN), "?");
});

/** A student that learns nothing, fast: enough for the loop's screen output. */
function fakeStudent(): TrainableModel {
  const graph = { numClasses: 2 } as Graph;
  return {
    graph,
    trainStep: (b: LabelledBatch) =>
      Promise.resolve({ loss: 0.7, ce: 0.7, kd: 0, correct1: b.n / 2, correct5: b.n }),
    forward: (b) => Promise.resolve(new Float32Array(b.n * 2)),
    stateDict: () => Promise.resolve(new Map()),
    optimizerState: () => Promise.resolve({ step: 0, momentum: new Map() }),
    load: () => Promise.resolve(),
    dispose: () => {},
  };
}

function batches(steps: number, onStep: (i: number) => void): TrainBatchSource {
  let i = 0;
  return {
    batchesPerEpoch: steps,
    startEpoch: () => void (i = 0),
    next: () => {
      if (i >= steps) return Promise.resolve(null);
      onStep(++i);
      return Promise.resolve({
        x: new Float32Array(4),
        y: Int32Array.of(0, 1),
        n: 2,
        shape: [1, 1, 1] as const,
      });
    },
    state: () => ({ i }),
    restore: () => {},
  };
}

const testSet: EvalBatchSource = {
  count: 2,
  async *batches() {
    yield { x: new Float32Array(2), y: Int32Array.of(0, 1), n: 2, shape: [1, 1, 1] as const };
  },
};

Deno.test("Ctrl-C during training: the screen ends with the interrupted message on a clean line", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "okd_progress_" });
  try {
    const { t, progress } = fakeTerminal(80);
    const ac = new AbortController();
    const summary = await train({
      config: resolveConfig({ epochs: 2, lr: 0.1 }),
      student: fakeStudent(),
      provider: null,
      trainData: batches(10, (i) => {
        t.now += 100;
        if (i === 4) {
          // What the CLI's SIGINT handler does: a message while the bar is live.
          progress.line("stopping after this step (Ctrl-C again to quit without saving)...");
          ac.abort();
        }
      }),
      testData: testSet,
      runDir,
      progress,
      engineName: "fake",
      clock: () => t.now,
      signal: ac.signal,
    });
    assert.equal(summary.status, "interrupted");
    const s = screen(t.out);
    assert.deepEqual(s.lines.at(-1), "", "the shell prompt starts on a fresh line");
    assert.match(s.lines.at(-2)!, /^interrupted: checkpoint saved to .*; continue with --resume --out .*$/);
    assert.equal(s.col, 0);
    // Nothing is drawn after the message (no live line, no timer redraw later).
    const after = t.out.slice(t.out.lastIndexOf("interrupted:"));
    assert.ok(!after.includes("\r") && !after.includes("\x1b"), JSON.stringify(after));
    await new Promise((r) => setTimeout(r, 300));
    assert.match(t.out, /--resume --out \S+\n$/);
    assert.ok(s.lines.some((l) => l.startsWith("stopping after this step")));
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});
