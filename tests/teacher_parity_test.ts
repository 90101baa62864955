/**
 * The six shared PyTorch teachers (CIFAR-100 state dicts, CIFAR-10 whole pickled modules) read
 * from .pth without Python give PyTorch's logits (tests/fixtures/teacher_logits.json, made by
 * tools/make_onnx_fixtures.py): within 1e-4 max abs and with identical top-1 on every image, on
 * the tfjs engine and, exported to ONNX by this package, on onnxruntime. Input gradients (the
 * oracle's raw material) within 1e-6 max abs.
 */
import assert from "node:assert/strict";
import { fitZooModel } from "../convert/infer_arch.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { loadPth } from "../convert/pth.ts";
import { loadOnnxruntime } from "../lib/deps.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { argmaxRows } from "../lib/metrics.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import { loadFixture } from "./fixtures.ts";
import { SHARED_DIR, sharedTest } from "./test_utils.ts";

const fixture = await loadFixture("teacher_logits.json");
const get = (k: string) => {
  const t = fixture.tensors.get(k);
  assert.ok(t, `fixture lacks ${k}`);
  return t;
};

for (const name of fixture.meta.teachers as string[]) {
  const [dataset, arch] = name.split("/");
  sharedTest(
    `${name}.pth: logits, top-1 and input gradients equal PyTorch (tfjs) and our ONNX export (onnxruntime)`,
    async () => {
      const file = new URL(`teachers/${name}.pth`, SHARED_DIR);
      const { graph, stateDict } = fitZooModel((await loadPth(file)).stateDict, file.pathname);
      assert.equal(graph.arch, arch);
      const engine = await createEngine({ engine: "tfjs", backend: "wasm" });
      const net = await engine.loadFrozen(graph, stateDict);
      const images = get(`${dataset}/images`);
      const n = images.shape[0];
      const k = graph.numClasses;
      const want = get(`${name}/image_logits`).data as Float32Array;
      const seeded = get("seeded_input").data as Float32Array;
      const wantSeeded = get(`${name}/seeded_logits`).data as Float32Array;
      try {
        const got = await net.forward({ x: images.data as Float32Array, n, shape: [3, 32, 32] });
        assert.ok(maxAbsDiff(got, want) <= 1e-4, `image logits differ by ${maxAbsDiff(got, want)}`);
        assert.deepEqual(argmaxRows(got, k), argmaxRows(want, k));
        const gotSeeded = await net.forward({ x: seeded, n: 8, shape: [3, 32, 32] });
        assert.ok(maxAbsDiff(gotSeeded, wantSeeded) <= 1e-4);
        const y = Int32Array.from(get(`${dataset}/seeded_labels`).data);
        const grad = await net.inputGradient({ x: seeded, y, n: 8, shape: [3, 32, 32] }, "mean");
        const wantGrad = get(`${name}/seeded_input_grad`).data as Float32Array;
        assert.ok(
          maxAbsDiff(grad, wantGrad) <= 1e-6,
          `input gradient differs by ${maxAbsDiff(grad, wantGrad)}`,
        );
      } finally {
        net.dispose();
      }
      // Our ONNX export of the same weights, run by onnxruntime.
      const ort = await loadOnnxruntime();
      const session = await ort.InferenceSession.create(exportOnnx(graph, stateDict, { dataset }));
      const out = await session.run({
        input: new ort.Tensor("float32", images.data as Float32Array, [n, 3, 32, 32]),
      });
      const ortLogits = out.logits.data as Float32Array;
      assert.ok(
        maxAbsDiff(ortLogits, want) <= 1e-4,
        `onnxruntime logits differ by ${maxAbsDiff(ortLogits, want)}`,
      );
      assert.deepEqual(argmaxRows(ortLogits, k), argmaxRows(want, k));
      await session.release();
    },
  );
}
