/**
 * The oracle's relevance is selectable: `grad-input` (default) keeps the paper's
 * x* = x - gamma * |x| * dCE/dx bit for bit, every LRP rule gives a finite x* through the tfjs
 * engine and the response-provider seam, and LRP-0 reproduces the paper's x* on a ResNet.
 */
import assert from "node:assert/strict";
import type { FrozenModel, LabelledBatch, OracleOptions } from "../lib/engines/engine.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { TfjsExplainer } from "../lib/explain/explainer.ts";
import { RELEVANCE_RULES } from "../lib/explain/options.ts";
import { createResponseProvider, reinforceInput } from "../lib/oracle.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";
import type { StateDict } from "../lib/tensor.ts";

const K = 10;
const engine = await createEngine({ engine: "tfjs", backend: "wasm" });

function teacherWeights(arch: string): StateDict {
  const g = buildModel(arch, { numClasses: K });
  const sd = initStateDict(g, 1);
  const rng = new Rng(7);
  for (const n of g.nodes) {
    if (n.op !== "batchnorm") continue;
    sd.get(n.runningMean)!.data.forEach((_, i, d) => (d[i] = 0.2 * rng.normal()));
    sd.get(n.bias)!.data.forEach((_, i, d) => (d[i] = 0.2 * rng.normal()));
  }
  return sd;
}

function makeBatch(n: number, seed: number): LabelledBatch {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: n * 3 * 8 * 8 }, () => rng.normal());
  return { x, y: Int32Array.from({ length: n }, (_, i) => (i * 3) % K), n, shape: [3, 8, 8] };
}

async function load(arch: string): Promise<FrozenModel> {
  return await engine.loadFrozen(buildModel(arch, { numClasses: K }), teacherWeights(arch));
}

const BASE: OracleOptions = { gamma: 0.5, recNum: 2, reduction: "mean" };

Deno.test("oracle: relevance grad-input is the default and reproduces x - gamma * |x| * dCE/dx", async () => {
  const t = await load("resnet8");
  try {
    const b = makeBatch(4, 1);
    const plain = await t.oracle(b, BASE, true);
    const explicit = await t.oracle(b, { ...BASE, relevance: "grad-input" }, true);
    assert.deepEqual(explicit.xStar, plain.xStar);
    assert.deepEqual(explicit.logits, plain.logits);
    // Host reference of the paper's formula, two steps.
    let x = b.x;
    for (let r = 0; r < 2; r++) {
      x = reinforceInput(x, await t.inputGradient({ ...b, x }, "mean"), BASE.gamma);
    }
    let d = 0;
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - plain.xStar![i]));
    assert.ok(d <= 1e-6, `x* differs from the host formula by ${d}`);
    assert.ok(plain.xStar!.some((v, i) => v !== b.x[i]), "x* equals x");
  } finally {
    t.dispose();
  }
});

for (const arch of ["resnet8", "wrn_16_1"]) {
  for (const rule of RELEVANCE_RULES) {
    Deno.test(`oracle with relevance ${rule} gives a finite x* and logits (${arch})`, async () => {
      const empty = engine.liveTensors();
      const t = await load(arch);
      try {
        const b = makeBatch(3, 2);
        await t.oracle(b, { ...BASE, relevance: rule }); // builds the canonized layers once
        const before = engine.liveTensors();
        const r = await t.oracle(b, { ...BASE, relevance: rule }, true);
        assert.equal(engine.liveTensors(), before, "tensors leaked per call");
        assert.equal(r.xStar!.length, b.x.length);
        assert.equal(r.logits.length, b.n * K);
        assert.ok(r.xStar!.every(Number.isFinite) && r.logits.every(Number.isFinite));
        assert.ok(r.xStar!.some((v, i) => v !== b.x[i]), "x* equals x");
        // The step only rescales pixels away from or towards 0: sign(x*) = sign(x) for small gamma.
        const small = await t.oracle(b, { gamma: 1e-3, recNum: 1, reduction: "sum", relevance: rule }, true);
        assert.ok(small.xStar!.every((v, i) => Math.sign(v) === Math.sign(b.x[i])));
      } finally {
        t.dispose();
      }
      assert.equal(engine.liveTensors(), empty, "dispose left tensors behind");
    });
  }
}

Deno.test("oracle with LRP-0 (lrp-epsilon, epsilon 0) gives the paper's x* on a ResNet", async () => {
  const t = await load("resnet8");
  try {
    const b = makeBatch(4, 3);
    for (const reduction of ["mean", "sum"] as const) {
      const opts = { gamma: 0.5, recNum: 2, reduction };
      const paper = await t.oracle(b, opts, true);
      const lrp0 = await t.oracle(b, { ...opts, relevance: "lrp-epsilon", lrp: { epsilon: 0 } }, true);
      let d = 0, scale = 0;
      for (let i = 0; i < b.x.length; i++) {
        d = Math.max(d, Math.abs(paper.xStar![i] - lrp0.xStar![i]));
        scale = Math.max(scale, Math.abs(paper.xStar![i] - b.x[i]));
      }
      assert.ok(scale > 0);
      assert.ok(d <= 1e-4 * scale, `${reduction}: x* differs by ${d} (step size ${scale})`);
    }
  } finally {
    t.dispose();
  }
});

Deno.test("oracle rejects unknown relevance rules and bad LRP parameters by name", async () => {
  const t = await load("resnet8");
  try {
    const b = makeBatch(1, 4);
    await assert.rejects(
      () => t.oracle(b, { ...BASE, relevance: "lrp-nope" as "lrp-gamma" }),
      /unknown relevance rule/,
    );
    await assert.rejects(
      () => t.oracle(b, { ...BASE, relevance: "lrp-gamma", lrp: { gamma: -1 } }),
      /lrp.gamma/,
    );
  } finally {
    t.dispose();
  }
});

Deno.test("the oracle response provider passes the relevance rule through", async () => {
  const t = await load("resnet8");
  try {
    const b = makeBatch(2, 5);
    const opts: OracleOptions = { ...BASE, relevance: "lrp-zplus" };
    const viaProvider = await createResponseProvider("oracle", t, opts).respond(b);
    assert.deepEqual(viaProvider, (await t.oracle(b, opts)).logits);
    assert.notDeepEqual(viaProvider, (await t.oracle(b, BASE)).logits);
  } finally {
    t.dispose();
  }
});

Deno.test("the explainer's x* and oracle logits equal the engine's; relevance is the first step", async () => {
  const g = buildModel("wrn_16_1", { numClasses: K });
  const w = teacherWeights("wrn_16_1");
  const ex = await TfjsExplainer.create(g, w, "wasm");
  const t = await engine.loadFrozen(g, w);
  try {
    const b = makeBatch(2, 6);
    for (const rule of ["grad-input", "lrp-gamma"] as const) {
      const opts = { gamma: 0.5, recNum: 1, reduction: "mean" as const, relevance: rule };
      const e = await ex.explain(b, opts);
      const o = await t.oracle(b, opts, true);
      const maxDiff = (a: Float32Array, c: Float32Array) =>
        a.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i])), 0);
      assert.ok(maxDiff(e.xStar, o.xStar!) <= 1e-6, `${rule}: x* differs`);
      assert.ok(maxDiff(e.oracleLogits, o.logits) <= 1e-5, `${rule}: oracle logits differ`);
      assert.ok(maxDiff(e.logits, await t.forward(b)) <= 1e-5, `${rule}: logits differ`);
      // One step: x* = x + gamma * sign(x) * R.
      const want = b.x.map((x, i) => x + 0.5 * Math.sign(x) * e.relevance[i]);
      assert.ok(maxDiff(want, e.xStar) <= 1e-6, `${rule}: x* is not x + gamma sign(x) R`);
      assert.deepEqual(e.relevance, await ex.relevance(b, rule, {}, "mean"));
    }
    const totals = await ex.layerTotals(b, "lrp-zplus");
    assert.equal(totals[0].name, "fc");
    assert.equal(totals.at(-1)!.name, "conv1");
  } finally {
    ex.dispose();
    t.dispose();
  }
});
