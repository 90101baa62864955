/**
 * Run logs: metrics.csv reads back to exactly the epoch records, curves.png decodes to a
 * four-panel figure with its curves drawn, and the training loop refreshes both after every epoch.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { resolveConfig } from "../lib/config.ts";
import type { LabelledBatch, TrainableModel } from "../lib/engines/engine.ts";
import type { Graph } from "../lib/graph.ts";
import { categoricalColor } from "../lib/plots/colors.ts";
import type { Progress } from "../lib/progress.ts";
import { CSV_COLUMNS, metricsCsv, RUN_LOG_FILES, writeRunLogs } from "../lib/run_logs.ts";
import { type EpochRecord, RUN_FILES, train } from "../lib/trainer.ts";
import { hasColour, picture, pixelStats } from "./png_utils.ts";

const record = (epoch: number, teacher: number | null): EpochRecord => ({
  epoch,
  lr: epoch < 3 ? 0.1 : 0.1 * 0.2,
  train_loss: 2.5 / epoch + 1 / 3,
  train_ce: 1.25 / epoch,
  train_kd: 1.25 / epoch + 1 / 3,
  train_top1: 20 + 7.125 * epoch,
  train_top5: 60 + epoch,
  teacher_train_top1: teacher,
  test_top1: 18 + 6.5 * epoch,
  test_top5: 55 + epoch,
  test_nll: 2 / epoch,
  test_ece: 12 - epoch,
  images_per_sec: 901.25,
  epoch_seconds: 30.5,
});

/** A minimal CSV reader (no quoting needed: every field is a number or empty). */
function readCsv(text: string): Record<string, string>[] {
  const [head, ...rows] = text.trimEnd().split("\n").map((l) => l.split(","));
  return rows.map((r) => Object.fromEntries(head.map((k, i) => [k, r[i]])));
}

Deno.test("metrics.csv has one row per epoch that reads back to the exact numbers; no teacher is an empty cell", () => {
  const recs = [record(1, 70.5), record(2, 71.25), record(3, null)];
  const text = metricsCsv(recs);
  assert.equal(text.split("\n")[0], CSV_COLUMNS.join(","));
  const rows = readCsv(text);
  assert.equal(rows.length, 3);
  rows.forEach((row, i) => {
    for (const k of CSV_COLUMNS) {
      const v = recs[i][k];
      assert.equal(row[k], v === null ? "" : String(v), k);
      if (v !== null) assert.equal(Number(row[k]), v, `${k} does not read back exactly`);
    }
  });
  assert.deepEqual(
    Object.keys(record(1, 0)).sort(),
    [...CSV_COLUMNS].sort(),
    "every record field is a column",
  );
});

Deno.test("curves.png: four panels with the curves drawn and titles", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_runlogs_" });
  try {
    await writeRunLogs(dir, [1, 2, 3, 4].map((e) => record(e, 80)), "training curves: test");
    const p = picture(await Deno.readFile(path.join(dir, RUN_LOG_FILES.curves)));
    assert.equal(p.width, 1040);
    assert.equal(p.height, 716);
    assert.ok(pixelStats(p, [0, 36]).dark > 100, "no figure title");
    // Each panel has its title and first curve (the first series colour) drawn.
    for (const [x0, y0] of [[0, 36], [520, 36], [0, 376], [520, 376]]) {
      let blue = 0;
      for (let y = y0; y < y0 + 340; y += 1) {
        for (let x = x0 + 70; x < x0 + 500; x += 1) {
          const [r, g, b] = p.at(x, y);
          if (r === 0x1f && g === 0x77 && b === 0xb4) blue++;
        }
      }
      assert.ok(blue > 50, `panel at ${x0},${y0}: ${blue} pixels of its first curve`);
    }
    assert.ok(hasColour(p, categoricalColor(2, 3)), "the teacher's accuracy curve");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the training loop refreshes metrics.csv and curves.png after every epoch, equal to metrics.jsonl", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "okd_runlogs_" });
  try {
    const seen: number[] = [];
    const csv = path.join(runDir, RUN_LOG_FILES.csv);
    // At the start of each epoch, the previous epochs are already in the CSV and the figure.
    const progress: Progress = {
      begin: () => {
        let rows = -1;
        try {
          rows = readCsv(Deno.readTextFileSync(csv)).length;
          Deno.statSync(path.join(runDir, RUN_LOG_FILES.curves));
        } catch { /* not yet written */ }
        seen.push(rows);
      },
      tick: () => {},
      end: () => {},
      line: () => {},
    };
    const student: TrainableModel = {
      graph: { numClasses: 2 } as Graph,
      trainStep: (b: LabelledBatch) =>
        Promise.resolve({ loss: 0.7, ce: 0.7, kd: 0, correct1: b.n / 2, correct5: b.n }),
      forward: (b) => Promise.resolve(new Float32Array(b.n * 2)),
      stateDict: () => Promise.resolve(new Map()),
      optimizerState: () => Promise.resolve({ step: 0, momentum: new Map() }),
      load: () => Promise.resolve(),
      dispose: () => {},
    };
    let i = 0;
    const batch = { x: new Float32Array(4), y: Int32Array.of(0, 1), n: 2, shape: [1, 1, 1] as const };
    await train({
      config: resolveConfig({ epochs: 3, lr: 0.1 }),
      student,
      provider: null,
      trainData: {
        batchesPerEpoch: 2,
        startEpoch: () => void (i = 0),
        next: () => Promise.resolve(i++ < 2 ? batch : null),
        state: () => ({}),
        restore: () => {},
      },
      testData: {
        count: 2,
        async *batches() {
          yield batch;
        },
      },
      runDir,
      progress,
      engineName: "fake",
    });
    assert.deepEqual(seen, [-1, 1, 2]);
    const jsonl = (await Deno.readTextFile(path.join(runDir, RUN_FILES.metrics))).trim().split("\n").map((
      l,
    ) => JSON.parse(l));
    const rows = readCsv(await Deno.readTextFile(csv));
    assert.equal(rows.length, 3);
    rows.forEach((row, e) => {
      for (const k of CSV_COLUMNS) assert.equal(row[k], jsonl[e][k] === null ? "" : String(jsonl[e][k]), k);
    });
    assert.ok(picture(await Deno.readFile(path.join(runDir, RUN_LOG_FILES.curves))).width > 0);
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});
