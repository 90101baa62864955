/**
 * The demo's pieces: its dataset written as a PNG folder reads back exactly, and its summary states
 * the settings and says which way each comparison went from the numbers (never assumed). The whole
 * demo (minutes of training) is run by `deno task demo`, not here.
 */
import assert from "node:assert/strict";
import { DEMO_SETTINGS, formatDemoSummary, writePngFolder } from "../app/demo.ts";
import { readPngFolder } from "../lib/data/png_folder.ts";
import { makeSyntheticDataset } from "../lib/data/synthetic.ts";
import type { ClassificationMetrics } from "../lib/metrics.ts";

Deno.test("the demo dataset written as a PNG folder reads back to the same pixels, labels and classes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_demo_" });
  try {
    const ds = makeSyntheticDataset({
      ...DEMO_SETTINGS.data,
      shape: [3, 8, 8],
      trainCount: 40,
      testCount: 20,
    });
    await writePngFolder(ds, dir);
    const back = await readPngFolder(dir);
    assert.deepEqual(back.classNames, ds.classNames);
    assert.deepEqual(back.shape, ds.shape);
    for (const split of ["train", "test"] as const) {
      assert.equal(back[split].count, ds[split].count);
      // The folder is read class by class: compare images as (label, bytes) multisets.
      const key = (s: typeof ds.train) =>
        Array.from(
          { length: s.count },
          (_, i) => `${s.labels[i]}:${s.images.subarray(i * 192, (i + 1) * 192).join(",")}`,
        ).sort();
      assert.deepEqual(key(back[split]), key(ds[split]), split);
    }
    // Written again over an existing folder: the same files, no leftovers.
    await writePngFolder(ds, dir);
    assert.equal((await readPngFolder(dir)).train.count, 40);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const m = (top1: number, ece: number, entropy: number, nll = 1): ClassificationMetrics => ({
  top1,
  top5: 100,
  nll,
  ece,
  mce: 0,
  entropy,
  count: 500,
  perClass: [],
  bins: [],
} as unknown as ClassificationMetrics);

Deno.test("the demo summary: a table of the four responses, the chosen settings, and comparisons from the numbers", () => {
  const files = { kdFile: "w/kd.onnx", ceFile: "w/ce.onnx", teacherFile: "w/t.onnx", studentEpochs: 3 };
  const good = formatDemoSummary(
    {
      plain: m(80, 9.5, 0.5),
      oracle: m(90, 4.25, 0.3),
      kd: m(75, 3, 0.6),
      ce: m(70, 8, 0.4),
      testCount: 500,
    },
    files,
  );
  assert.match(good, /^ {2}teacher resnet20 on x +80\.00% +9\.50% +1\.000 +0\.500$/m);
  assert.match(
    good,
    new RegExp(`^  oracle teacher on x\\* \\(gamma ${DEMO_SETTINGS.gamma}\\) +90\\.00% +4\\.25%`, "m"),
  );
  assert.match(
    good,
    /^oracle vs teacher: sharper \(entropy 0\.500 -> 0\.300\), better calibrated \(ECE 9\.50 -> 4\.25 %\), more accurate \(top-1 80\.00 -> 90\.00 %\)$/m,
  );
  assert.match(good, /^oracle KD vs CE-only student: not sharper .* better calibrated .* more accurate/m);
  assert.match(good, new RegExp(`noise ${DEMO_SETTINGS.data.noise}`));
  assert.match(
    good,
    new RegExp(`gamma ${DEMO_SETTINGS.gamma} with the ${DEMO_SETTINGS.reduction} reduction`),
  );
  const bad = formatDemoSummary(
    { plain: m(80, 4, 0.3), oracle: m(80, 9, 0.5), kd: m(60, 9, 0.6), ce: m(70, 8, 0.4), testCount: 500 },
    files,
  );
  assert.match(bad, /^oracle vs teacher: not sharper .* not better calibrated .* as accurate/m);
  assert.match(bad, /^oracle KD vs CE-only student: .* less accurate/m);
});
