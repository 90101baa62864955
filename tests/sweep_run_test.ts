// Real sweeps of tiny runs (synthetic data, resnet8, 1-2 epochs on 100 images): each cell is a
// subprocess of the package's CLI and takes a few seconds.
import assert from "node:assert/strict";
import * as path from "node:path";
import { runLocal } from "../app/sweep/local.ts";
import { planSweep, type SweepPlan } from "../app/sweep/plan.ts";
import { readCellResult, writeSweepReport } from "../app/sweep/report.ts";
import { runCell } from "../app/sweep/runner.ts";
import { runSweepCli } from "../app/sweep/cli.ts";
import { parseSweepSpec } from "../app/sweep/spec.ts";
import { loadPlan, readRecord, sweepState, writeRecord } from "../app/sweep/state.ts";

const TINY = { data: "synthetic", epochs: 1, subset: 100, batchSize: 50 };

function capture() {
  const lines: string[] = [];
  return { lines, stream: { write: (s: string) => lines.push(...s.split("\n").filter((l) => l)) } };
}

Deno.test({
  name:
    "sweep run: cells run with a teacher trained first, a failed cell is recorded, the rest finish; rerun skips",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_run_" });
    try {
      const spec = parseSweepSpec({
        name: "tiny",
        settings: TINY,
        teachers: { t8: { student: "resnet8", epochs: 2 } },
        pairs: [{ teacher: "@t8", student: "resnet8" }, {
          teacher: `${dir}/missing.onnx`,
          student: "resnet8",
        }],
        methods: ["train", "plain", "oracle"],
        axes: { seed: [0, 1] },
      }, "tiny.yaml");
      const plan = planSweep(spec, dir);
      // teacher + per seed: CE, 2 pairs x (plain, oracle)
      assert.equal(plan.cells.length, 11);
      const out = capture();
      const state = await runLocal(plan, { jobs: 2, cores: 2, stream: out.stream, intervalMs: 500 });
      assert.equal(state.counts.done, 7, JSON.stringify(state.counts));
      assert.equal(state.counts.failed, 4);
      for (const c of state.cells.filter((x) => x.status === "failed")) {
        assert.match(c.name, /missing-resnet8/);
        assert.match(c.reason!, /missing\.onnx/); // the run's own last stderr line
      }
      const rec = await readRecord(dir, "oracle_missing-resnet8_seed=0");
      assert.equal(rec?.status, "failed");
      // One progress view: counts, running cells with their epoch, ETA.
      assert.ok(
        out.lines.some((l) =>
          /^sweep +\d+\/11 done, \d running, \d failed, \d+ to run \|.* \d\/\d epochs.*\| ETA /.test(l)
        ),
      );
      assert.ok(out.lines.includes("sweep    tiny: 11 cells in " + dir + ", 2 at a time, 1 thread each"));
      assert.ok(out.lines.some((l) => l.startsWith("failed   oracle_missing-resnet8_seed=1: ")));
      // Ordinary run folders: the teacher's ONNX fed the students; the run recorded its teacher test.
      const oracle = plan.cells.find((c) => c.name === "oracle_t8-resnet8_seed=1")!;
      const cfg = JSON.parse(await Deno.readTextFile(path.join(oracle.config.out, "config.json")));
      assert.equal(cfg.teacher, path.join(dir, "cells/teacher_t8/student.onnx"));
      assert.equal(cfg.response, "oracle");
      assert.equal(cfg.seed, 1);
      const r0 = (await readCellResult(plan.cells.find((c) => c.name === "oracle_t8-resnet8_seed=0")!))!;
      assert.ok(r0.teacher && r0.teacher.oracle && r0.teacher.oracle.gamma === 0.5);
      assert.equal((await readCellResult(oracle))!.teacher, null); // tested once, by seed 0
      const log = await Deno.readTextFile(path.join(dir, "logs", "oracle_t8-resnet8_seed=1.log"));
      assert.match(log, /cli\.ts distill --config .*configs\/oracle_t8-resnet8_seed=1\.json --out /);
      assert.equal((await readRecord(dir, "train_resnet8_seed=0"))?.attempts, 1);

      // Again: finished cells are skipped (no new attempt), failed ones are tried again.
      const again = capture();
      const s2 = await runLocal(plan, { jobs: 2, cores: 2, stream: again.stream, intervalMs: 60_000 });
      assert.equal(s2.counts.done, 7);
      assert.deepEqual(
        again.lines.filter((l) => l.startsWith("start")).map((l) => l.split(/ +/)[1]).sort(),
        plan.cells.filter((c) => c.name.includes("missing")).map((c) => c.name).sort(),
      );
      assert.equal((await readRecord(dir, "train_resnet8_seed=0"))?.attempts, 1);
      assert.equal((await readRecord(dir, "plain_missing-resnet8_seed=0"))?.attempts, 2);
      const log2 = await Deno.readTextFile(path.join(dir, "logs", "oracle_t8-resnet8_seed=1.log"));
      assert.equal(log2, log);

      // The report reads the run folders.
      const rep = await writeSweepReport(plan);
      assert.equal(rep.done, 6);
      assert.equal(rep.total, 10);
      assert.deepEqual(rep.columns, ["CE only", "KD", "oracle KD"]);
      assert.deepEqual(rep.rows, ["t8 -> resnet8", "missing -> resnet8"]);
      const g = rep.groups.find((x) => x.row === "t8 -> resnet8" && x.column === "oracle KD")!;
      assert.deepEqual(g.seeds, [0, 1]);
      const s0 = JSON.parse(
        await Deno.readTextFile(path.join(dir, "cells", "oracle_t8-resnet8_seed=0", "summary.json")),
      );
      assert.equal(g.last.top1.values[0], s0.last_test_acc.top1);
      const ce = rep.groups.find((x) => x.row === "t8 -> resnet8" && x.column === "CE only")!;
      assert.deepEqual(ce.cells, ["train_resnet8_seed=0", "train_resnet8_seed=1"]);
      const d = rep.differences.find((x) => x.row === "t8 -> resnet8")!;
      assert.equal(d.top1.n, 2);
      assert.ok(
        Math.abs(
          d.top1.mean -
            (g.last.top1.mean -
              rep.groups.find((x) => x.row === "t8 -> resnet8" && x.column === "KD")!.last.top1.mean),
        ) < 1e-9,
      );
      const md = await Deno.readTextFile(path.join(dir, "results.md"));
      const lastAt = md.indexOf("## Test top-1 after the last epoch");
      const bestAt = md.indexOf("## Best test top-1 (epoch selected on the test set)");
      assert.ok(lastAt > 0 && bestAt > lastAt, "last-epoch numbers come first");
      assert.match(
        md,
        /\| t8 -> resnet8 \| [\d.]+ ± [\d.]+ \(2\) \| [\d.]+ ± [\d.]+ \(2\) \| [\d.]+ ± [\d.]+ \(2\) \|/,
      );
      assert.match(
        md,
        /\| missing -> resnet8 \| [\d.]+ ± [\d.]+ \(2\) \| – \(0\/2 done\) \| – \(0\/2 done\) \|/,
      );
      assert.match(md, /oracle KD - KD \| 2 \| [+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\]/);
      const json = JSON.parse(await Deno.readTextFile(path.join(dir, "results.json")));
      assert.equal(json.cells.length, 6);
      const png = await Deno.readFile(path.join(dir, "results.png"));
      assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sweep run: an interrupted cell resumes from its checkpoint; a folder with another run is refused",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_resume_" });
    try {
      const plan: SweepPlan = planSweep(
        parseSweepSpec({
          settings: { ...TINY, epochs: 3, subset: 200 },
          methods: ["train"],
          axes: { student: ["resnet8"] },
        }, "r.yaml"),
        dir,
      );
      const cell = plan.cells[0];
      const ac = new AbortController();
      const first = await runCell(plan, cell, {
        signal: ac.signal,
        onLine: (l) => {
          if (l.startsWith("epoch 1:")) ac.abort(); // Ctrl-C after the first epoch
        },
      });
      assert.equal(first.status, "interrupted");
      const st = await sweepState(plan);
      assert.equal(st.cells[0].status, "interrupted");
      assert.ok(st.cells[0].epochsDone >= 1 && st.cells[0].epochsDone < 3);
      const second = await runCell(plan, cell);
      assert.equal(second.status, "done");
      const log = await Deno.readTextFile(path.join(dir, "logs", `${cell.name}.log`));
      assert.match(log, / --resume\n/);
      assert.match(log, /resuming at epoch [23]/);
      const summary = JSON.parse(await Deno.readTextFile(path.join(cell.config.out, "summary.json")));
      assert.equal(summary.test_acc1s.length, 3);
      assert.equal((await runCell(plan, cell)).status, "skipped");
      // A cell another live runner holds (fresh heartbeat) is left alone; a dead runner's is not.
      const held = { status: "running" as const, attempts: 3, updated: new Date().toISOString() };
      await writeRecord(dir, cell.name, { ...held, host: `${Deno.hostname()}:1` });
      const busy = await runCell(plan, cell);
      assert.equal(busy.status, "busy");
      assert.match(busy.reason!, /:1 is running it/);
      await writeRecord(dir, cell.name, { ...held, host: `${Deno.hostname()}:999999999` });
      assert.equal((await runCell(plan, cell)).status, "skipped");

      // The same folder asked to hold a different run: refused, nothing overwritten.
      const other = planSweep(
        parseSweepSpec({
          settings: { ...TINY, epochs: 3, subset: 200, lr: 0.2 },
          methods: ["train"],
          axes: { student: ["resnet8"] },
        }, "r.yaml"),
        dir,
      );
      const out = await runCell(other, other.cells[0]);
      assert.equal(out.status, "failed");
      assert.match(out.reason!, /holds another run \(lr 0\.05, the sweep asks 0\.2\)/);
      assert.equal(
        JSON.parse(await Deno.readTextFile(path.join(cell.config.out, "summary.json"))).time_consume,
        summary.time_consume,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sweep cli: run --dry-run and --set, status, report; bad specs name the file",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_cli_" });
    try {
      const spec = path.join(dir, "s.yaml");
      await Deno.writeTextFile(
        spec,
        "settings: {data: synthetic, epochs: 5, subset: 100, batch-size: 50}\nmethods: [train]\naxes:\n  student: [resnet8]\n  seed: [0, 1]\n",
      );
      const o = capture();
      assert.equal(
        await runSweepCli(["run", spec, "--out", `${dir}/sw`, "--dry-run"], { stream: o.stream }),
        0,
      );
      assert.ok(o.lines.some((l) => /^ +0 {2}train +train_resnet8_seed=0$/.test(l)));
      assert.equal((await loadPlan(`${dir}/sw`)).cells[0].config.epochs, 5);
      const run = capture();
      assert.equal(
        await runSweepCli(["run", spec, "--out", `${dir}/sw`, "--set", "epochs=1", "--jobs", "2"], {
          stream: run.stream,
        }),
        0,
      );
      const st = capture();
      assert.equal(await runSweepCli(["status", `${dir}/sw`], { stream: st.stream }), 0);
      assert.ok(st.lines.some((l) => /^done +1\/1 {2}train_resnet8_seed=1$/.test(l)), st.lines.join("\n"));
      assert.ok(st.lines.some((l) => l.startsWith("sweep    2/2 done, 0 running, 0 failed, 0 to run")));
      const rep = capture();
      assert.equal(await runSweepCli(["report", `${dir}/sw`, "--no-figure"], { stream: rep.stream }), 0);
      assert.match(
        await Deno.readTextFile(`${dir}/sw/results.md`),
        /\(none\) -> resnet8 \| [\d.]+ ± [\d.]+ \(2\)/,
      );

      await Deno.writeTextFile(spec, "settings: {data: synthetic, epoch: 5}\n");
      const bad = capture();
      assert.equal(await runSweepCli(["run", spec, "--out", `${dir}/x`], { stream: bad.stream }), 1);
      assert.equal(bad.lines.length, 1);
      assert.match(bad.lines[0], new RegExp(`^error: ${spec}: settings: unknown setting "epoch"`));
      const bad2 = capture();
      assert.equal(await runSweepCli(["run", spec, "--set", "gamma=-1"], { stream: bad2.stream }), 1);
      assert.match(bad2.lines[0], /s\.yaml: --set: --gamma must be >= 0/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
