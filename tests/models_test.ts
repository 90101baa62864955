/**
 * The zoo matches PyTorch: state-dict keys, order, shapes, dtypes and parameter counts for every
 * architecture (tests/fixtures/zoo_layout.json from tools/make_zoo_fixture.py), plus seeded,
 * PyTorch-distributed initialisation.
 */
import assert from "node:assert/strict";
import { countParameters, validateGraph } from "../lib/graph.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";

const layout = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/zoo_layout.json", import.meta.url)),
) as Record<string, { params: number; state: [string, number[], string][] }>;

for (const arch of MODEL_NAMES) {
  for (const [classes, cin] of [[100, 3], [10, 1]]) {
    Deno.test(`${arch} (${classes} classes, ${cin} channels) has PyTorch's state-dict layout`, () => {
      const want = layout[`${arch}/${classes}/${cin}`];
      assert.ok(want, "fixture entry missing");
      const g = buildModel(arch, { numClasses: classes, inChannels: cin });
      validateGraph(g);
      assert.deepEqual(
        g.params.map((p) => [p.name, p.shape, p.dtype]),
        want.state,
      );
      assert.equal(countParameters(g), want.params);
    });
  }
}

Deno.test("initialisation is seeded and follows PyTorch's schemes", () => {
  const g = buildModel("resnet20", { numClasses: 100 });
  const a = initStateDict(g, 7), b = initStateDict(g, 7), c = initStateDict(g, 8);
  assert.deepEqual(a.get("layer2.0.conv1.weight")!.data, b.get("layer2.0.conv1.weight")!.data);
  assert.notDeepEqual(a.get("layer2.0.conv1.weight")!.data, c.get("layer2.0.conv1.weight")!.data);
  // Kaiming normal, fan_out = 32 * 3 * 3: std sqrt(2 / 288).
  const w = Array.from(a.get("layer3.0.conv2.weight")!.data); // 64x64x3x3 = 36864 draws
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
  const want = Math.sqrt(2 / (64 * 9));
  assert.ok(Math.abs(mean) < 0.02 * want * 10, `mean ${mean}`);
  assert.ok(Math.abs(std / want - 1) < 0.02, `std ${std} vs ${want}`);
  // nn.Linear: U(-1/sqrt(64), 1/sqrt(64)).
  const fc = Array.from(a.get("fc.weight")!.data);
  const bound = 1 / 8;
  assert.ok(fc.every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...fc) > 0.9 * bound && Math.min(...fc) < -0.9 * bound);
  assert.ok(a.get("bn1.weight")!.data.every((v) => v === 1));
  assert.ok(a.get("bn1.running_var")!.data.every((v) => v === 1));
  assert.equal(a.get("bn1.num_batches_tracked")!.dtype, "int64");
});

Deno.test("WRN classifier bias starts at zero as in RepDistiller", () => {
  const sd = initStateDict(buildModel("wrn_16_2", { numClasses: 10 }), 0);
  assert.ok(sd.get("fc.bias")!.data.every((v) => v === 0));
});

Deno.test("unknown or malformed architectures are refused with the known names", () => {
  assert.throws(() => buildModel("resnet21"), /depth must be 6n\+2/);
  assert.throws(() => buildModel("vgg16"), /unknown architecture "vgg16"; known: resnet8/);
  assert.throws(() => buildModel("resnet20", { numClasses: 0 }), /numClasses must be a positive integer/);
});
