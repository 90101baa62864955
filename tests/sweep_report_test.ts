// The report's layout and statistics on run folders with known numbers (written here as the
// trainer writes them), so every figure in the tables can be checked by hand.
import assert from "node:assert/strict";
import * as path from "node:path";
import { planSweep, type SweepCell } from "../app/sweep/plan.ts";
import { sweepReport, writeSweepReport } from "../app/sweep/report.ts";
import { parseSweepSpec } from "../app/sweep/spec.ts";

/** Writes a finished run folder for `cell` whose epochs have these test top-1 values. */
async function fakeRun(
  cell: SweepCell,
  top1s: number[],
  ece = 5,
  teacher?: { plain: number; oracle: number },
) {
  const dir = cell.config.out;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path.join(dir, "config.json"), JSON.stringify(cell.config));
  const records = top1s.map((t, i) => ({
    epoch: i + 1,
    test_top1: t,
    test_top5: 99,
    test_ece: ece + i,
    test_nll: 1 + i / 10,
    teacher_train_top1: null,
    epoch_seconds: 1,
  }));
  await Deno.writeTextFile(
    path.join(dir, "metrics.jsonl"),
    records.map((r) => JSON.stringify(r) + "\n").join(""),
  );
  const best = records.reduce((a, b) => (b.test_top1 > a.test_top1 ? b : a));
  await Deno.writeTextFile(
    path.join(dir, "summary.json"),
    JSON.stringify({
      status: "completed",
      test_acc1s: top1s,
      best_test_acc: { top1: best.test_top1, top5: 99, epoch: best.epoch },
      last_test_acc: { top1: top1s.at(-1), top5: 99 },
    }),
  );
  if (teacher) {
    await Deno.writeTextFile(
      path.join(dir, "teacher_test.json"),
      JSON.stringify({
        plain: { top1: teacher.plain, ece: 3, nll: 1 },
        oracle: { top1: teacher.oracle, ece: 2, nll: 0.5, gamma: cell.config.gamma },
      }),
    );
  }
}

Deno.test("sweep report: paper layout, seed statistics, paired oracle - KD interval, best-on-test labelled", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_report_" });
  try {
    const plan = planSweep(
      parseSweepSpec({
        name: "known",
        settings: { data: "synthetic", epochs: 2 },
        pairs: [{ teacher: "t56.onnx", student: "resnet20" }, { teacher: "t110.onnx", student: "resnet20" }],
        methods: ["train", "plain", "oracle"],
        axes: { seed: [0, 1, 2], gamma: [0.5, 1] },
      }, "known.yaml"),
      dir,
    );
    const byName = (n: string) => plan.cells.find((c) => c.name === n)!;
    // t56 row: KD last epoch 70, 71, 72; oracle gamma 0.5: 70.4, 71.9, 71.9 -> d = 0.4, 0.9, -0.1
    for (const [s, kd, or] of [[0, 70, 70.4], [1, 71, 71.9], [2, 72, 71.9]]) {
      await fakeRun(
        byName(`plain_t56-resnet20_seed=${s}`),
        [kd + 5, kd],
        5,
        s === 0 ? { plain: 72, oracle: 80 } : undefined,
      );
      await fakeRun(byName(`oracle_t56-resnet20_gamma=0.5_seed=${s}`), [or - 1, or], 4);
      await fakeRun(byName(`train_resnet20_seed=${s}`), [60, 68 + s]);
    }
    await fakeRun(byName("oracle_t56-resnet20_gamma=1_seed=0"), [1, 73]); // 1 of 3 seeds
    const r = await sweepReport(plan);
    assert.deepEqual(r.rows, ["t56 -> resnet20", "t110 -> resnet20"]);
    assert.deepEqual(r.columns, ["CE only", "KD", "oracle KD (gamma 0.5)", "oracle KD (gamma 1)"]);
    assert.equal(r.done, 10);
    assert.equal(r.total, 21);
    const g = (row: string, col: string) => r.groups.find((x) => x.row === row && x.column === col)!;
    const kd = g("t56 -> resnet20", "KD");
    assert.deepEqual(kd.last.top1.values, [70, 71, 72]);
    assert.equal(kd.last.top1.mean, 71);
    assert.equal(kd.last.top1.std, 1);
    assert.deepEqual(kd.bestOnTest.top1.values, [75, 76, 77]); // the first epoch was higher
    assert.deepEqual(kd.last.ece.values, [6, 6, 6]);
    // The CE baseline of resnet20 appears in both rows.
    assert.deepEqual(g("t110 -> resnet20", "CE only").last.top1.values, [68, 69, 70]);
    assert.deepEqual(g("t56 -> resnet20", "CE only").cells, g("t110 -> resnet20", "CE only").cells);
    // Paired difference: d = [0.4, 0.9, -0.1]: mean 0.4, sd 0.5, t(0.975, 2) = 4.302653
    const d = r.differences.find((x) => x.row === "t56 -> resnet20" && x.oracle === "oracle KD (gamma 0.5)")!;
    assert.equal(d.plain, "KD");
    assert.deepEqual(d.seeds, [0, 1, 2]);
    assert.ok(Math.abs(d.top1.mean - 0.4) < 1e-9);
    const half = 4.3026527 * 0.5 / Math.sqrt(3);
    assert.ok(Math.abs(d.top1.low - (0.4 - half)) < 1e-6 && Math.abs(d.top1.high - (0.4 + half)) < 1e-6);
    assert.equal(d.ece.mean, -1);
    const d1 = r.differences.find((x) => x.oracle === "oracle KD (gamma 1)")!;
    assert.deepEqual(d1.seeds, [0]);
    assert.equal(d1.top1.mean, 3);
    assert.ok(Number.isNaN(d1.top1.low));
    assert.deepEqual(r.teachers, [{
      row: "t56 -> resnet20",
      plainTop1: 72,
      oracleTop1: [{ gamma: 0.5, top1: 80 }],
    }]);

    await writeSweepReport(plan, { figure: false });
    const md = await Deno.readTextFile(path.join(dir, "results.md"));
    assert.match(
      md,
      /\| t56 -> resnet20 \| 69\.00 ± 1\.00 \(3\) \| 71\.00 ± 1\.00 \(3\) \| 71\.40 ± 0\.87 \(3\) \| 73\.00 ± – \(1\) \(1\/3 done\) \|/,
    );
    assert.match(md, /\| t110 -> resnet20 \| 69\.00 ± 1\.00 \(3\) \| – \(0\/3 done\) \|/);
    assert.match(
      md,
      new RegExp(
        `\\| t56 -> resnet20 \\| oracle KD \\(gamma 0\\.5\\) - KD \\| 3 \\| \\+0\\.40 \\[-${
          (half - 0.4).toFixed(2)
        }, \\+${(0.4 + half).toFixed(2)}\\] \\| -1\\.00 \\[-1\\.00, -1\\.00\\]`,
      ),
    );
    assert.match(md, /\| oracle KD \(gamma 1\) - KD \| 1 \| \+3\.00 \(1 seed, no interval\)/);
    assert.match(md, /\| t56 -> resnet20 \| 72\.00 \| 80\.00 \(gamma 0\.5\) \|/);
    assert.match(
      md,
      /## Best test top-1 \(epoch selected on the test set\)[\s\S]*\| t56 -> resnet20 \| 69\.00 ± 1\.00 \(3\) \| 76\.00 ± 1\.00 \(3\) \|/,
    );
    assert.ok(md.indexOf("after the last epoch") < md.indexOf("selected on the test set"));
    const json = JSON.parse(await Deno.readTextFile(path.join(dir, "results.json")));
    assert.equal(json.groups.length, 8);
    assert.equal(json.cells.length, 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
