/**
 * lib/models/macs.ts: forward multiply-accumulates equal PyTorch's, counted by forward hooks on
 * tools/cifar_models.py (tests/fixtures/zoo_layout.json, tools/make_zoo_fixture.py), for every
 * architecture at both input sizes; the workloads' sums follow from them.
 */
import assert from "node:assert/strict";
import { GraphBuilder } from "../lib/graph.ts";
import { forwardMacs, workloadMacs } from "../lib/models/macs.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";

const layout = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/zoo_layout.json", import.meta.url)),
) as Record<string, { macs: Record<string, number> }>;

for (const arch of MODEL_NAMES) {
  Deno.test(`${arch}: forward MACs per image equal PyTorch's hook count`, () => {
    for (const [classes, cin] of [[100, 3], [10, 1]]) {
      const want = layout[`${arch}/${classes}/${cin}`]?.macs;
      assert.ok(want, "fixture entry missing");
      const g = buildModel(arch, { numClasses: classes, inChannels: cin });
      for (const size of [32, 28]) {
        assert.equal(forwardMacs(g, [size, size]).total, want[size], `${classes}/${cin} at ${size}`);
      }
    }
  });
}

Deno.test("workloads: oracle = (2 recNum + 1) forwards, train = 3 forwards less the image's input gradient", () => {
  const g = buildModel("resnet20", { numClasses: 100 });
  const { total, fromInput } = forwardMacs(g, [32, 32]);
  assert.equal(fromInput, 3 * 16 * 9 * 32 * 32); // conv1 only
  assert.equal(workloadMacs(g, [32, 32], "forward"), total);
  assert.equal(workloadMacs(g, [32, 32], "oracle"), 3 * total);
  assert.equal(workloadMacs(g, [32, 32], "oracle", 2), 5 * total);
  assert.equal(workloadMacs(g, [32, 32], "train"), 3 * total - fromInput);
});

Deno.test("strided, unpadded and linear geometry", () => {
  const b = new GraphBuilder("t", 2, 5);
  const c1 = b.conv("c1", b.input, 2, 4, 3, 2, 1); // 9x9 -> 5x5
  const c2 = b.conv("c2", c1, 4, 6, 3, 1, 0); // 5x5 -> 3x3
  const g = b.finish(b.linear("fc", b.globalAvgPool("p", c2), 6, 5));
  assert.deepEqual(forwardMacs(g, [9, 9]), {
    total: 4 * 2 * 9 * 25 + 6 * 4 * 9 * 9 + 5 * 6,
    fromInput: 4 * 2 * 9 * 25,
  });
});
