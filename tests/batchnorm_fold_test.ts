/** BatchNorm folding against a direct convolution followed by eval-mode BatchNorm. */
import assert from "node:assert/strict";
import { foldableBatchNorms, foldBatchNorm } from "../convert/batchnorm_fold.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { decodeOnnxModel } from "../convert/onnx_proto.ts";
import { GraphBuilder } from "../lib/graph.ts";
import { lowerEvalNet } from "../lib/engines/onnxruntime/eval_net.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { Rng } from "../lib/rng.ts";
import { maxAbsDiff } from "../lib/tensor.ts";

/** Naive NCHW convolution of one image (stride 1, symmetric zero padding). */
function conv(
  x: Float32Array,
  c: number,
  h: number,
  w: Float32Array,
  shape: number[],
  pad: number,
  bias?: Float32Array,
) {
  const [o, i, k] = shape;
  const out = new Float64Array(o * h * h);
  for (let a = 0; a < o; a++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < h; xx++) {
        let s = bias ? bias[a] : 0;
        for (let b = 0; b < i; b++) {
          for (let dy = 0; dy < k; dy++) {
            for (let dx = 0; dx < k; dx++) {
              const yy = y + dy - pad, xs = xx + dx - pad;
              if (yy < 0 || yy >= h || xs < 0 || xs >= h) continue;
              s += w[((a * i + b) * k + dy) * k + dx] * x[(b * h + yy) * h + xs];
            }
          }
        }
        out[(a * h + y) * h + xx] = s;
      }
    }
  }
  assert.equal(c, i);
  return out;
}

Deno.test("folded conv equals conv followed by eval-mode BatchNorm, with and without a conv bias", () => {
  const rng = new Rng(4);
  const [o, i, k, h] = [5, 3, 3, 6];
  const rand = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
  const x = rand(i * h * h, () => rng.normal());
  const w = rand(o * i * k * k, () => rng.normal());
  const bn = {
    gamma: rand(o, () => 0.5 + rng.uniform()),
    beta: rand(o, () => rng.normal()),
    mean: rand(o, () => rng.normal()),
    variance: rand(o, () => 0.1 + rng.uniform()),
    eps: 1e-5,
  };
  for (const bias of [undefined, rand(o, () => rng.normal())]) {
    const ref = conv(x, i, h, w, [o, i, k], 1, bias).map((v, j) => {
      const a = Math.floor(j / (h * h));
      return (v - bn.mean[a]) / Math.sqrt(bn.variance[a] + bn.eps) * bn.gamma[a] + bn.beta[a];
    });
    const f = foldBatchNorm({ shape: [o, i, k, k], data: w }, bias, bn);
    const got = conv(x, i, h, f.weight, [o, i, k], 1, f.bias);
    assert.ok(maxAbsDiff(got, ref) < 1e-5, `bias ${bias ? "yes" : "no"}: ${maxAbsDiff(got, ref)}`);
  }
});

Deno.test("mismatched channel counts are an error", () => {
  const bn = { gamma: [1], beta: [0], mean: [0], variance: [1], eps: 1e-5 };
  assert.throws(
    () => foldBatchNorm({ shape: [2, 1, 1, 1], data: new Float32Array(2) }, undefined, bn),
    /BatchNorm gamma has 1 channels, the convolution 2/,
  );
});

Deno.test("one foldability rule: the engine's eval graph and the exporter fold the same BatchNorms", () => {
  for (const arch of ["resnet8", "wrn_16_1"] as const) {
    const g = buildModel(arch, { numClasses: 10 });
    const foldable = foldableBatchNorms(g);
    const bns = g.nodes.filter((n) => n.op === "batchnorm").length;
    // wrn's pre-activation BatchNorms read adds, not convs: they stay.
    assert.ok(foldable.size > 0 && (arch === "resnet8" ? foldable.size === bns : foldable.size < bns));
    const net = lowerEvalNet(g, initStateDict(g, 1));
    assert.equal(net.ops.filter((o) => o.op === "batchnorm").length, bns - foldable.size);
    const exported = decodeOnnxModel(exportOnnx(g, initStateDict(g, 1)), "x.onnx");
    assert.equal(exported.nodes.filter((n) => n.opType === "BatchNormalization").length, bns - foldable.size);
  }
  // A convolution output read by a BatchNorm and by something else does not fold.
  const b = new GraphBuilder("t", 3, 2);
  const c = b.conv("conv", b.input, 3, 4, 3, 1, 1);
  const bn = b.batchNorm("bn", c, 4);
  const g = b.finish(b.linear("fc", b.globalAvgPool("pool", b.add("add", bn, c)), 4, 2));
  assert.equal(foldableBatchNorms(g).size, 0);
});
