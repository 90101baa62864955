/**
 * The onnxruntime engine against the tfjs engine on seeded networks with non-trivial BatchNorm
 * statistics, in both of its layouts (blocked NCHWc, the default on x86, and portable NCHW):
 * eval forward, input gradients (mean and sum), the oracle (x* and the logits on it), whole
 * training steps (distillation and CE-only, momentum, Nesterov, dampening, weight decay, a partial
 * batch), and the state/optimiser round trip.
 *
 * Float32 and ReLU kinks: a sample with a pre-activation within rounding of zero can take the
 * other side of the kink in a different (equally valid) summation order, and then its input
 * gradient differs by far more than rounding. Gradient comparisons are therefore judged per
 * sample, and one sample per batch may fall outside the tolerance (it is reported by name; it
 * must still agree to 1% of the gradient's scale, which catches real errors).
 */
import assert from "node:assert/strict";
import { buildModel } from "../lib/models/zoo.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { OnnxruntimeEngine } from "../lib/engines/onnxruntime/engine.ts";
import { nchwcBlockSize } from "../lib/engines/onnxruntime/nchwc.ts";
import type { Engine, LabelledBatch, SgdOptions } from "../lib/engines/engine.ts";
import type { WeightGradMethod } from "../lib/engines/onnxruntime/conv_grad.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import { nontrivialStateDict, randomBatch, randomLogits, sampleDiffs } from "./random_models.ts";

const LAYOUTS = ["nchwc", "nchw"] as const;

/** Per-sample check allowing one kink sample (see the module comment). */
function assertPerSample(label: string, got: Float32Array, want: Float32Array, n: number, tol: number): void {
  const d = sampleDiffs(got, want, n, tol);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  assert.ok(
    d.outside.length <= 1,
    `${label}: samples ${d.outside} outside ${tol} (${d.perSample.map((x) => x.toExponential(1))})`,
  );
  for (const s of d.outside) {
    console.log(
      `  ${label}: sample ${s} differs by ${d.perSample[s].toExponential(2)} (ReLU kink allowance)`,
    );
    assert.ok(
      d.perSample[s] < 0.01 * scale,
      `${label}: sample ${s} differs by ${d.perSample[s]}, beyond a kink`,
    );
  }
}

Deno.test("NCHWc block size is probed from this onnxruntime build", async () => {
  const block = await nchwcBlockSize();
  // x86 builds of MLAS block by 8 (AVX2) or 16 (AVX-512); 0 means no NCHWc kernels.
  assert.ok([0, 4, 8, 16].includes(block), `unexpected block size ${block}`);
});

// The pure-JS cpu backend is the reference: it is slow only for training-size convolutions.
const cpuReference = await createEngine({ engine: "tfjs", backend: "cpu" });

for (const layout of LAYOUTS) {
  for (const arch of ["resnet8", "resnet20", "wrn_16_2"]) {
    Deno.test(`frozen ${arch} matches tfjs-cpu: forward, input gradients, oracle (onnxruntime ${layout})`, async () => {
      const graph = buildModel(arch, { numClasses: 10 });
      const weights = nontrivialStateDict(graph, 11);
      const ort = await new OnnxruntimeEngine({ layout }).loadFrozen(graph, weights);
      const ref = await cpuReference.loadFrozen(graph, weights);
      const n = 6;
      const batch = randomBatch(n, 10, [3, 32, 32], 21);
      try {
        const logits = await ort.forward(batch);
        assert.ok(maxAbsDiff(logits, await ref.forward(batch)) <= 1e-4, "forward logits");
        for (const reduction of ["mean", "sum"] as const) {
          const g = await ort.inputGradient(batch, reduction);
          assertPerSample(
            `${arch} ${reduction} gradient`,
            g,
            await ref.inputGradient(batch, reduction),
            n,
            1e-5,
          );
        }
        const opts = { gamma: 0.5, recNum: 2, reduction: "mean" } as const;
        const got = await ort.oracle(batch, opts, true);
        const want = await ref.oracle(batch, opts, true);
        assertPerSample(`${arch} x*`, got.xStar!, want.xStar!, n, 1e-5);
        assertPerSample(`${arch} logits on x*`, got.logits, want.logits, n, 1e-4);
        // keepInput false returns the same logits from the same graph family.
        assert.deepEqual((await ort.oracle(batch, opts)).logits, got.logits);
      } finally {
        ort.dispose();
        ref.dispose();
      }
    });
  }
}

/** One training scenario: network, optimiser, loss, batches (the second one smaller). */
interface TrainCase {
  arch: string;
  sgd: SgdOptions;
  teacher: boolean;
  /** Image side (small sides keep the pure-JS reference fast). */
  side: number;
}

const TRAIN_CASES: TrainCase[] = [
  {
    arch: "resnet8",
    sgd: { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 },
    teacher: true,
    side: 16,
  },
  // WRN: pre-activation blocks and a stride-1 1x1 shortcut.
  {
    arch: "wrn_10_2",
    sgd: { momentum: 0.9, weightDecay: 1e-4, nesterov: true, dampening: 0 },
    teacher: false,
    side: 8,
  },
  {
    arch: "resnet8",
    sgd: { momentum: 0.8, weightDecay: 0, nesterov: false, dampening: 0.3 },
    teacher: true,
    side: 16,
  },
];

let tfjsCpu: Engine | null = null;

/** Training-graph variants: each layout with its default weight gradient, and NCHWc's batch-folded one. */
const TRAIN_VARIANTS: { layout: (typeof LAYOUTS)[number]; weightGrad?: WeightGradMethod }[] = [
  ...LAYOUTS.map((layout) => ({ layout })),
  { layout: "nchwc", weightGrad: "batch_folded" },
];

for (const { layout, weightGrad } of TRAIN_VARIANTS) {
  for (const c of TRAIN_CASES) {
    const variant = `${c.teacher ? "KD" : "CE"}, nesterov ${c.sgd.nesterov}, dampening ${c.sgd.dampening}`;
    const engineLabel = weightGrad ? `${layout}, weightGrad ${weightGrad}` : layout;
    Deno.test(`training ${c.arch} (${variant}) matches tfjs-cpu after 2 steps (onnxruntime ${engineLabel})`, async () => {
      tfjsCpu ??= await createEngine({ engine: "tfjs", backend: "cpu" });
      const classes = 10;
      const graph = buildModel(c.arch, { numClasses: classes });
      const init = nontrivialStateDict(graph, 5);
      const ort = await new OnnxruntimeEngine({ layout, weightGrad }).loadTrainable(graph, init, c.sgd);
      const ref = await tfjsCpu.loadTrainable(graph, init, c.sgd);
      const loss = { ceWeight: 0.5, alpha: 1, temperature: 2 };
      try {
        // The second batch is a partial one (another compiled graph).
        for (const [step, n] of [[1, 4], [2, 3]] as const) {
          const batch: LabelledBatch = randomBatch(n, classes, [3, c.side, c.side], 100 + step);
          const teacher = c.teacher ? randomLogits(n, classes, 200 + step) : null;
          const a = await ort.trainStep(batch, teacher, loss, 0.05);
          const b = await ref.trainStep(batch, teacher, loss, 0.05);
          for (const k of ["loss", "ce", "kd"] as const) {
            assert.ok(Math.abs(a[k] - b[k]) < 1e-5, `step ${step} ${k}: ${a[k]} vs ${b[k]}`);
          }
          assert.deepEqual([a.correct1, a.correct5], [b.correct1, b.correct5], `step ${step} hit counts`);
          const got = await ort.stateDict();
          const want = await ref.stateDict();
          for (const p of graph.params) {
            const d = maxAbsDiff(got.get(p.name)!.data, want.get(p.name)!.data);
            assert.ok(d <= 1e-5, `step ${step}: ${p.name} differs by ${d}`);
          }
        }
        const [oa, ob] = [await ort.optimizerState(), await ref.optimizerState()];
        assert.equal(oa.step, 2);
        for (const [name, t] of ob.momentum) {
          assert.ok(maxAbsDiff(oa.momentum.get(name)!.data, t.data) <= 1e-5, `momentum of ${name}`);
        }
      } finally {
        ort.dispose();
        ref.dispose();
      }
    });
  }
}

for (const layout of LAYOUTS) {
  Deno.test(`stateDict / optimizerState / load resume bit-exactly (onnxruntime ${layout})`, async () => {
    const graph = buildModel("resnet8", { numClasses: 10 });
    const sgd = { momentum: 0.9, weightDecay: 5e-4, nesterov: true, dampening: 0 };
    const engine = new OnnxruntimeEngine({ layout });
    const a = await engine.loadTrainable(graph, nontrivialStateDict(graph, 3), sgd);
    const loss = { ceWeight: 1, alpha: 0, temperature: 1 };
    const batches = [1, 2, 3].map((s) => randomBatch(4, 10, [3, 16, 16], s));
    await a.trainStep(batches[0], null, loss, 0.1);
    const saved = await a.stateDict();
    const opt = await a.optimizerState();
    assert.equal(saved.get("bn1.num_batches_tracked")!.data[0], 1);
    const b = await engine.loadTrainable(graph, nontrivialStateDict(graph, 99), sgd);
    await b.load(saved, opt);
    for (const batch of batches.slice(1)) {
      const [sa, sb] = [await a.trainStep(batch, null, loss, 0.1), await b.trainStep(batch, null, loss, 0.1)];
      assert.deepEqual(sa, sb);
    }
    const [wa, wb] = [await a.stateDict(), await b.stateDict()];
    for (const [k, t] of wa) assert.deepEqual(wb.get(k)!.data, t.data, k);
    assert.equal(wa.get("bn1.num_batches_tracked")!.data[0], 3);
    // Loading weights without optimiser state keeps the buffers; a fresh model starts without.
    assert.equal((await (await engine.loadTrainable(graph, wa, sgd)).optimizerState()).momentum.size, 0);
    a.dispose();
    b.dispose();
  });

  Deno.test(`a student's eval forward equals a frozen copy of its state dict (onnxruntime ${layout})`, async () => {
    const graph = buildModel("resnet8", { numClasses: 10 });
    const engine = new OnnxruntimeEngine({ layout });
    const student = await engine.loadTrainable(graph, nontrivialStateDict(graph, 4), {
      momentum: 0.9,
      weightDecay: 0,
      nesterov: false,
      dampening: 0,
    });
    const batch = randomBatch(5, 10, [3, 32, 32], 8);
    const before = await student.forward(batch);
    await student.trainStep(batch, null, { ceWeight: 1, alpha: 0, temperature: 1 }, 0.1);
    const after = await student.forward(batch);
    assert.ok(maxAbsDiff(before, after) > 1e-4, "the step changed nothing");
    const frozen = await engine.loadFrozen(graph, await student.stateDict());
    assert.deepEqual(await frozen.forward(batch), after);
    frozen.dispose();
    student.dispose();
  });
}

Deno.test("onnxruntime engine rejects bad labels and mismatched shapes", async () => {
  const graph = buildModel("resnet8", { numClasses: 10 });
  const engine = new OnnxruntimeEngine();
  const frozen = await engine.loadFrozen(graph, nontrivialStateDict(graph, 1));
  const batch = randomBatch(2, 10, [3, 32, 32], 1);
  await assert.rejects(
    () => frozen.inputGradient({ ...batch, y: new Int32Array([0, 10]) }, "mean"),
    /label 10/,
  );
  await assert.rejects(() => frozen.forward({ ...batch, shape: [1, 32, 32] }), /3-channel/);
  await assert.rejects(() => frozen.oracle(batch, { gamma: 0.5, recNum: 0, reduction: "mean" }), /recNum/);
  frozen.dispose();
});

Deno.test("an LRP relevance rule on the onnxruntime engine is computed, not a silent grad-input", async () => {
  const graph = buildModel("resnet8", { numClasses: 10 });
  const model = await new OnnxruntimeEngine().loadFrozen(graph, nontrivialStateDict(graph, 3));
  try {
    const batch = randomBatch(2, 10, [3, 32, 32], 1);
    const opts = { gamma: 0.5, recNum: 1, reduction: "mean" } as const;
    const lrp = await model.oracle(batch, { ...opts, relevance: "lrp-gamma" }, true);
    const grad = await model.oracle(batch, opts, true);
    assert.ok(lrp.xStar!.every(Number.isFinite));
    assert.notDeepEqual(lrp.xStar, grad.xStar);
  } finally {
    model.dispose();
  }
});
