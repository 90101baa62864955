/**
 * The oracle's relevance is selectable on every engine: `grad-input` (default) keeps the paper's
 * x* = x - gamma * |x| * dCE/dx, every LRP rule gives a finite x* through the engine seam and the
 * response-provider seam, LRP-0 reproduces the paper's x* on a ResNet, relevance is conserved
 * from the logits to the input on bias-free networks, and the onnxruntime LRP (a modified backward
 * pass in its ONNX graph) agrees with the tfjs LRP.
 */
import assert from "node:assert/strict";
import type { Engine, FrozenModel, LabelledBatch, OracleOptions } from "../lib/engines/engine.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { Explainer } from "../lib/explain/explainer.ts";
import {
  createResponseProvider,
  type LrpParams,
  normalisedBounds,
  oracleResponse,
  reinforceInput,
  reinforceWithRelevance,
  RELEVANCE_RULES,
} from "../lib/oracle/mod.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";
import type { StateDict } from "../lib/tensor.ts";
import { ORACLE_ENGINES } from "./engines.ts";
import { OnnxruntimeEngine } from "../lib/engines/onnxruntime/engine.ts";
import { nchwcBlockSize } from "../lib/engines/onnxruntime/nchwc.ts";

const K = 10;
const engines = new Map<string, Engine>();
for (const c of ORACLE_ENGINES) engines.set(c.label, await createEngine(c));

/** Random BatchNorm shifts; `biasFree` zeroes every shift and bias (conservation holds exactly). */
function teacherWeights(arch: string, biasFree = false): StateDict {
  const g = buildModel(arch, { numClasses: K });
  const sd = initStateDict(g, 1);
  const rng = new Rng(7);
  for (const n of g.nodes) {
    if (n.op === "linear" && n.bias && biasFree) sd.get(n.bias)!.data.fill(0);
    if (n.op !== "batchnorm") continue;
    sd.get(n.runningMean)!.data.forEach((_, i, d) => (d[i] = biasFree ? 0 : 0.2 * rng.normal()));
    sd.get(n.bias)!.data.forEach((_, i, d) => (d[i] = biasFree ? 0 : 0.2 * rng.normal()));
  }
  return sd;
}

function makeBatch(n: number, seed: number): LabelledBatch {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: n * 3 * 8 * 8 }, () => rng.normal());
  return { x, y: Int32Array.from({ length: n }, (_, i) => (i * 3) % K), n, shape: [3, 8, 8] };
}

async function load(engine: Engine, arch: string, biasFree = false): Promise<FrozenModel> {
  return await engine.loadFrozen(buildModel(arch, { numClasses: K }), teacherWeights(arch, biasFree));
}

const maxDiff = (a: Float32Array, c: ArrayLike<number>) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i])), 0);
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

const BASE: OracleOptions = { gamma: 0.5, recNum: 2, reduction: "mean" };

for (const [label, engine] of engines) {
  Deno.test(`oracle: relevance grad-input is the default and reproduces x - gamma * |x| * dCE/dx (${label})`, async () => {
    const t = await load(engine, "resnet8");
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
      const d = maxDiff(x, plain.xStar!);
      assert.ok(d <= 1e-6, `x* differs from the host formula by ${d}`);
      assert.ok(plain.xStar!.some((v, i) => v !== b.x[i]), "x* equals x");
    } finally {
      t.dispose();
    }
  });

  for (const arch of ["resnet8", "wrn_16_1"]) {
    for (const rule of RELEVANCE_RULES) {
      Deno.test(`oracle with relevance ${rule} gives a finite x* and logits (${arch}, ${label})`, async () => {
        const empty = engine.liveTensors();
        const t = await load(engine, arch);
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
          const small = await t.oracle(
            b,
            { gamma: 1e-3, recNum: 1, reduction: "sum", relevance: rule },
            true,
          );
          assert.ok(small.xStar!.every((v, i) => Math.sign(v) === Math.sign(b.x[i])));
          // One step is x + gamma * sign(x) * R with the relevance the engine returns.
          const one = await t.oracle(b, { gamma: 0.5, recNum: 1, reduction: "mean", relevance: rule }, {
            xStar: true,
            relevance: true,
          });
          const want = reinforceWithRelevance(b.x, one.relevance!, 0.5);
          assert.ok(
            maxDiff(want, one.xStar!) <= 1e-6 * Math.max(1, maxAbs(b.x)),
            "x* is not x + gamma sign(x) R",
          );
        } finally {
          t.dispose();
        }
        assert.equal(engine.liveTensors(), empty, "dispose left tensors behind");
      });
    }

    // Tolerance as lrp_test.ts: |sum of R at the input - sum of R at the logits| <= 1e-4 * sum |R at the logits|.
    Deno.test(`LRP relevance is conserved from the logits to the input on a bias-free ${arch} (${label})`, async () => {
      const t = await load(engine, arch, true);
      try {
        const b = makeBatch(3, 9);
        const x = b.x.map((v) => Math.max(-2.5, Math.min(2.5, v)));
        const batch = { ...b, x };
        const logits = await t.forward(batch);
        // R at the logits: z * (onehot - softmax(z)) / N.
        const start = new Float64Array(b.n);
        let scale = 0;
        for (let i = 0; i < b.n; i++) {
          const z = logits.subarray(i * K, (i + 1) * K);
          const m = Math.max(...z);
          const e = z.map((v) => Math.exp(v - m));
          const sum = e.reduce((a, v) => a + v, 0);
          for (let k = 0; k < K; k++) {
            const r = z[k] * ((k === b.y[i] ? 1 : 0) - e[k] / sum) / b.n;
            start[i] += r;
            scale += Math.abs(r) / b.n;
          }
        }
        const cases: [string, OracleOptions["relevance"], LrpParams][] = [
          ["lrp-0", "lrp-epsilon", { epsilon: 0 }],
          ["lrp-gamma", "lrp-gamma", { gamma: 0.25 }],
          ["lrp-zplus", "lrp-zplus", {}],
          ["lrp-gamma, zB", "lrp-gamma", {
            gamma: 0.25,
            firstLayer: "zB",
            inputBounds: normalisedBounds([0.5, 0.5, 0.5], [0.2, 0.2, 0.2]),
          }],
        ];
        for (const [name, relevance, lrp] of cases) {
          const r = await t.oracle(batch, { gamma: 0, recNum: 1, reduction: "mean", relevance, lrp }, {
            relevance: true,
          });
          const per = b.x.length / b.n;
          for (let i = 0; i < b.n; i++) {
            let total = 0;
            for (let j = 0; j < per; j++) total += r.relevance![i * per + j];
            assert.ok(
              Math.abs(total - start[i]) <= 1e-4 * scale,
              `${name} #${i}: input ${total} vs logits ${start[i]}`,
            );
          }
        }
      } finally {
        t.dispose();
      }
    });
  }

  Deno.test(`oracle with LRP-0 (lrp-epsilon, epsilon 0) gives the paper's x* on a ResNet (${label})`, async () => {
    const t = await load(engine, "resnet8");
    try {
      const b = makeBatch(4, 3);
      for (const reduction of ["mean", "sum"] as const) {
        const opts = { gamma: 0.5, recNum: 2, reduction };
        const paper = await t.oracle(b, opts, true);
        const lrp0 = await t.oracle(b, { ...opts, relevance: "lrp-epsilon", lrp: { epsilon: 0 } }, true);
        const d = maxDiff(paper.xStar!, lrp0.xStar!);
        const scale = maxDiff(paper.xStar!, b.x);
        assert.ok(scale > 0);
        assert.ok(d <= 1e-4 * scale, `${reduction}: x* differs by ${d} (step size ${scale})`);
      }
    } finally {
      t.dispose();
    }
  });

  Deno.test(`oracle rejects unknown relevance rules and bad LRP parameters by name (${label})`, async () => {
    const t = await load(engine, "resnet8");
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

  Deno.test(`the oracle response provider passes the relevance rule through (${label})`, async () => {
    const t = await load(engine, "resnet8");
    try {
      const b = makeBatch(2, 5);
      const opts: OracleOptions = { ...BASE, relevance: "lrp-zplus" };
      const viaProvider = await createResponseProvider("oracle", t, opts).respond(b);
      assert.deepEqual(viaProvider, (await t.oracle(b, opts)).logits);
      assert.notDeepEqual(viaProvider, (await t.oracle(b, BASE)).logits);
      // The gamma-0 rule: a step of 0 is the plain forward.
      assert.deepEqual((await oracleResponse(t, b, { ...opts, gamma: 0 })).logits, await t.forward(b));
    } finally {
      t.dispose();
    }
  });

  Deno.test(`the explainer's x* and oracle logits equal the engine's; relevance is the first step (${label})`, async () => {
    const g = buildModel("wrn_16_1", { numClasses: K });
    const w = teacherWeights("wrn_16_1");
    const t = await engine.loadFrozen(g, w);
    const ex = new Explainer(t);
    try {
      const b = makeBatch(2, 6);
      for (const rule of ["grad-input", "lrp-gamma"] as const) {
        const opts = { gamma: 0.5, recNum: 1, reduction: "mean" as const, relevance: rule };
        const e = await ex.explain(b, opts);
        const o = await t.oracle(b, opts, true);
        assert.ok(maxDiff(e.xStar, o.xStar!) <= 1e-6, `${rule}: x* differs`);
        assert.ok(maxDiff(e.oracleLogits, o.logits) <= 1e-5, `${rule}: oracle logits differ`);
        assert.ok(maxDiff(e.logits, await t.forward(b)) <= 1e-5, `${rule}: logits differ`);
        // One step: x* = x + gamma * sign(x) * R.
        const want = b.x.map((x, i) => x + 0.5 * Math.sign(x) * e.relevance[i]);
        assert.ok(maxDiff(want, e.xStar) <= 1e-6, `${rule}: x* is not x + gamma sign(x) R`);
        assert.ok(
          maxDiff(e.relevance, await ex.relevance(b, rule, {}, "mean")) <= 1e-6 * maxAbs(e.relevance),
        );
      }
    } finally {
      ex.dispose();
      t.dispose();
    }
  });
}

// onnxruntime computes LRP as a modified backward pass in its ONNX graph; the tfjs engine walks
// canonized layers in tfjs ops. Same relevance maps and x* within float32 summation-order noise:
// relevance max abs diff <= 5e-4 * max |R|, x* <= 1e-5 * max |x|, logits on x* <= 1e-4.
// Measured (resnet8, wrn_16_1, resnet20; 7 rule settings x 2 reductions x 2 batches, NCHW and
// NCHWc graphs): relevance <= 3e-6 * max |R| in 82 of 84 cases, 1.35e-4 in two (wrn_16_1 z+, a
// near-zero z+ denominator amplifies the summation-order noise); x* <= 2.2e-6 * max |x|; logits
// <= 1.6e-6. Both graph layouts are checked where this onnxruntime build has NCHWc kernels.
const LAYOUTS = (await nchwcBlockSize()) > 0 ? ["nchwc", "nchw"] as const : ["nchw"] as const;
for (const [arch, layout] of ["resnet8", "wrn_16_1"].flatMap((a) => LAYOUTS.map((l) => [a, l] as const))) {
  Deno.test(`onnxruntime LRP equals tfjs LRP: relevance maps and x* (${arch}, ${layout} graphs)`, async () => {
    const ort = await load(new OnnxruntimeEngine({ layout }), arch);
    const tfjs = await load(engines.get("tfjs-wasm")!, arch);
    try {
      const b = makeBatch(3, 10);
      const bounds = normalisedBounds([0.5, 0.5, 0.5], [0.2, 0.2, 0.2]);
      const x = b.x.map((v) => Math.max(-2.5, Math.min(2.5, v)));
      const batch = { ...b, x };
      const cases: [OracleOptions["relevance"], LrpParams][] = [
        ["lrp-epsilon", {}],
        ["lrp-epsilon", { epsilon: 0 }],
        ["lrp-gamma", {}],
        ["lrp-zplus", {}],
        ["lrp-gamma", { firstLayer: "same" }],
        ["lrp-zplus", { firstLayer: "same" }],
        ["lrp-epsilon", { firstLayer: "zB", inputBounds: bounds }],
      ];
      for (const [relevance, lrp] of cases) {
        for (const reduction of ["mean", "sum"] as const) {
          const opts: OracleOptions = { gamma: 0.5, recNum: 2, reduction, relevance, lrp };
          const keep = { xStar: true, relevance: true };
          const [a, c] = [await ort.oracle(batch, opts, keep), await tfjs.oracle(batch, opts, keep)];
          const what = `${relevance} ${JSON.stringify(lrp)} ${reduction}`;
          const dr = maxDiff(a.relevance!, c.relevance!), sr = maxAbs(c.relevance!);
          assert.ok(sr > 0 && dr <= 5e-4 * sr, `${what}: relevance differs by ${dr} (max ${sr})`);
          const dx = maxDiff(a.xStar!, c.xStar!);
          assert.ok(dx <= 1e-5 * maxAbs(x), `${what}: x* differs by ${dx}`);
          const dl = maxDiff(a.logits, c.logits);
          assert.ok(dl <= 1e-4 * Math.max(1, maxAbs(c.logits)), `${what}: logits on x* differ by ${dl}`);
        }
      }
    } finally {
      ort.dispose();
      tfjs.dispose();
    }
  });
}
