/**
 * The project's wasm kernels against the tfjs `cpu` backend (the reference) on seeded random
 * shapes, plus one resnet8 SGD step on wasm against the same step on cpu.
 *
 * Error measure throughout: relative error = max|a - b| / max(1, max|b|), b the reference.
 * @module
 */

import assert from "node:assert/strict";
import { initTfjs } from "../lib/engines/tfjs/backend.ts";
import { TfjsEngine } from "../lib/engines/tfjs/engine.ts";
import { BATCH_NORM_TRAIN } from "../lib/engines/tfjs/wasm_batch_norm.ts";
import { WASM_TRAINING_KERNELS } from "../lib/engines/tfjs/wasm_kernels.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";
import type { StateDict } from "../lib/tensor.ts";
import type { Tf, TfTensor } from "../lib/deps.ts";

const TOL = 1e-4;

/** max|a - b| / max(1, max|b|). */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let diff = 0, scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return Number.isFinite(diff) ? diff / scale : Infinity;
}

function randomValues(rng: Rng, shape: number[]): Float32Array {
  const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) v[i] = rng.normal();
  return v;
}

/** Runs `f` on `backend` and returns the outputs' values and shapes (tensors freed). */
async function onBackend(
  backend: "cpu" | "wasm",
  f: (tf: Tf) => TfTensor | TfTensor[],
): Promise<{ values: Float32Array[]; shapes: number[][] }> {
  const tf = await initTfjs(backend);
  const before = tf.memory().numTensors;
  // Kernels free their intermediates at the backend level, below the engine's tensor count.
  const buffersBefore = tf.backend().numDataIds();
  const outs = tf.tidy(() => {
    const r = f(tf);
    return Array.isArray(r) ? r : [r];
  });
  const values = outs.map((t) => t.dataSync() as Float32Array);
  const shapes = outs.map((t) => [...t.shape]);
  tf.dispose(outs);
  assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
  assert.equal(tf.backend().numDataIds(), buffersBefore, `${backend}: backend buffers leaked`);
  return { values, shapes };
}

/** Compares `f` on wasm against cpu; returns the worst relative error. */
async function compare(label: string, f: (tf: Tf) => TfTensor | TfTensor[]): Promise<number> {
  const ref = await onBackend("cpu", f);
  const got = await onBackend("wasm", f);
  let worst = 0;
  ref.values.forEach((r, i) => {
    assert.deepEqual(got.shapes[i], ref.shapes[i], `${label}: output ${i} shape`);
    const e = relError(got.values[i], r);
    assert.ok(e <= TOL, `${label}: output ${i} relative error ${e.toExponential(2)} > ${TOL}`);
    worst = Math.max(worst, e);
  });
  return worst;
}

type Pad = "same" | "valid" | number | number[][];
interface ConvCase {
  x: [number, number, number, number];
  k: [number, number, number, number];
  strides: number | [number, number];
  pad: Pad;
}

/** Fixed cases (the shapes CIFAR ResNets use, and edge cases) plus seeded random ones. */
function convCases(): ConvCase[] {
  const cases: ConvCase[] = [
    { x: [2, 8, 8, 4], k: [3, 3, 4, 4], strides: 1, pad: 1 }, // BasicBlock conv
    { x: [2, 8, 8, 4], k: [3, 3, 4, 8], strides: 2, pad: 1 }, // stage transition
    { x: [2, 8, 8, 4], k: [1, 1, 4, 8], strides: 2, pad: 0 }, // downsample shortcut
    { x: [1, 7, 9, 3], k: [3, 3, 3, 5], strides: 2, pad: 1 }, // batch 1, odd sizes
    { x: [3, 5, 5, 2], k: [3, 3, 2, 3], strides: 1, pad: "same" },
    { x: [2, 7, 7, 2], k: [3, 3, 2, 3], strides: 2, pad: "same" }, // asymmetric SAME padding
    { x: [2, 7, 6, 2], k: [3, 3, 2, 3], strides: 2, pad: "valid" },
    { x: [2, 6, 7, 3], k: [3, 2, 3, 2], strides: [1, 2], pad: 0 }, // unequal strides, 3x2 kernel
    { x: [2, 9, 8, 2], k: [5, 3, 2, 2], strides: 3, pad: [[0, 0], [2, 1], [0, 2], [0, 0]] },
    { x: [1, 1, 1, 3], k: [1, 1, 3, 2], strides: 1, pad: 0 }, // 1x1 image
    { x: [2, 4, 4, 1], k: [3, 3, 1, 1], strides: 1, pad: 2 }, // padding wider than needed
    { x: [2, 5, 6, 3], k: [1, 1, 3, 5], strides: 1, pad: 0 }, // 1x1 paths: fewer inputs than outputs
    { x: [2, 7, 5, 6], k: [1, 1, 6, 2], strides: 2, pad: "same" }, // ... more inputs, odd sizes
    { x: [1, 4, 4, 2], k: [1, 1, 2, 3], strides: 2, pad: 1 }, // 1x1 with padding: general path
  ];
  const rng = new Rng(2024);
  while (cases.length < 33) {
    const k = [1, 2, 3, 5][rng.int(4)];
    const s = 1 + rng.int(3);
    const h = k + rng.int(8), w = k + rng.int(8);
    const pads: Pad[] = ["same", "valid", rng.int(k), [[0, 0], [rng.int(k), rng.int(k)], [
      rng.int(k),
      rng.int(k),
    ], [0, 0]]];
    cases.push({
      x: [1 + rng.int(3), h, w, 1 + rng.int(6)],
      k: [k, k, 0, 1 + rng.int(6)],
      strides: rng.int(4) === 0 ? [s, 1 + rng.int(2)] : s,
      pad: pads[rng.int(pads.length)],
    });
    const c = cases[cases.length - 1];
    c.k[2] = c.x[3];
  }
  return cases;
}

async function dyShape(c: ConvCase): Promise<number[]> {
  const tf = await initTfjs("cpu");
  const info = tf.backend_util.computeConv2DInfo(
    c.x,
    c.k,
    c.strides,
    1,
    c.pad as never,
    "floor",
    false,
    "channelsLast",
  );
  return [c.x[0], info.outHeight, info.outWidth, c.k[3]];
}

Deno.test("registration: the project kernels are registered for wasm and replace the stock ones", async () => {
  const tf = await initTfjs("wasm");
  for (const name of WASM_TRAINING_KERNELS) assert.ok(tf.getKernel(name, "wasm"), `${name} missing`);
  // Registering twice must not warn or stack registrations.
  const { registerWasmTrainingKernels } = await import("../lib/engines/tfjs/wasm_kernels.ts");
  const warn = console.warn;
  const warnings: unknown[] = [];
  console.warn = (...a: unknown[]) => warnings.push(a);
  try {
    registerWasmTrainingKernels(tf);
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, []);
});

Deno.test("Conv2DBackpropFilter matches cpu on seeded random shapes", async () => {
  const rng = new Rng(11);
  for (const c of convCases()) {
    const dy = await dyShape(c);
    const xv = randomValues(rng, c.x), dyv = randomValues(rng, dy);
    const attrs = {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: "floor",
      filterShape: c.k,
    };
    await compare(`dW ${JSON.stringify(c)}`, (tf) =>
      tf.engine().runKernel(
        "Conv2DBackpropFilter",
        { x: tf.tensor(xv, c.x), dy: tf.tensor(dyv, dy) },
        attrs as never,
      ) as TfTensor);
  }
});

Deno.test("Conv2DBackpropInput matches cpu on seeded random shapes", async () => {
  const rng = new Rng(12);
  for (const c of convCases()) {
    const dy = await dyShape(c);
    const dyv = randomValues(rng, dy), wv = randomValues(rng, c.k);
    const attrs = {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: "floor",
      inputShape: c.x,
    };
    await compare(`dX ${JSON.stringify(c)}`, (tf) =>
      tf.engine().runKernel(
        "Conv2DBackpropInput",
        { dy: tf.tensor(dyv, dy), filter: tf.tensor(wv, c.k) },
        attrs as never,
      ) as TfTensor);
  }
});

Deno.test("conv2d gradients through tf.grad (as the trainer calls them) match cpu", async () => {
  const rng = new Rng(13);
  for (const c of convCases().slice(0, 8)) {
    if (typeof c.pad !== "number" && c.pad !== "same" && c.pad !== "valid") continue;
    const xv = randomValues(rng, c.x), wv = randomValues(rng, c.k);
    const dy = await dyShape(c);
    const rv = randomValues(rng, dy);
    await compare(`grads ${JSON.stringify(c)}`, (tf) => {
      const x = tf.tensor(xv, c.x), w = tf.tensor(wv, c.k), r = tf.tensor(rv, dy);
      const f = (a: TfTensor, b: TfTensor) =>
        tf.sum(tf.mul(tf.conv2d(a as never, b as never, c.strides, c.pad as never), r));
      return tf.grads(f)([x, w]);
    });
  }
});

Deno.test("BatchMatMul matches cpu, with transposes and batch dimensions", async () => {
  const rng = new Rng(14);
  const cases: [number[], number[], boolean, boolean][] = [
    [[3, 4], [4, 5], false, false],
    [[4, 3], [4, 5], true, false],
    [[3, 4], [5, 4], false, true],
    [[4, 3], [5, 4], true, true],
    [[1, 7], [7, 1], false, false],
    [[2, 3, 4], [4, 5], false, false], // b shared by all batches
    [[2, 4, 3], [1, 4, 5], true, false],
    [[3, 4], [2, 4, 5], false, false], // a shared by all batches
    [[3, 4], [2, 5, 4], false, true],
    [[2, 3, 4], [2, 4, 5], false, false],
    [[2, 4, 3], [2, 5, 4], true, true],
    [[2, 2, 3, 4], [2, 2, 4, 5], false, false],
    [[64, 64], [64, 100], false, false], // fc forward
    [[64, 100], [64, 100], false, true], // fc input gradient
    [[64, 64], [64, 100], true, false], // fc weight gradient
  ];
  for (const [as, bs, ta, tb] of cases) {
    const av = randomValues(rng, as), bv = randomValues(rng, bs);
    await compare(
      `matmul ${as} ${bs} ${ta} ${tb}`,
      (tf) =>
        tf.engine().runKernel("BatchMatMul", { a: tf.tensor(av, as), b: tf.tensor(bv, bs) }, {
          transposeA: ta,
          transposeB: tb,
        } as never) as TfTensor,
    );
  }
});

Deno.test("BatchMatMul broadcasts batch dimensions like NumPy (host reference: cpu mis-broadcasts these)", async () => {
  const rng = new Rng(15);
  const cases: [number[], number[]][] = [[[2, 1, 3, 4], [3, 4, 5]], [[1, 3, 2, 3], [2, 1, 3, 2]]];
  for (const [as, bs] of cases) {
    const av = randomValues(rng, as), bv = randomValues(rng, bs);
    const got = await onBackend(
      "wasm",
      (tf) =>
        tf.engine().runKernel("BatchMatMul", { a: tf.tensor(av, as), b: tf.tensor(bv, bs) }, {
          transposeA: false,
          transposeB: false,
        } as never) as TfTensor,
    );
    const [m, k] = as.slice(-2), n = bs[bs.length - 1];
    const da = as.slice(0, -2), db = bs.slice(0, -2);
    const rank = Math.max(da.length, db.length);
    const pa = [...Array(rank - da.length).fill(1), ...da], pb = [...Array(rank - db.length).fill(1), ...db];
    const out = pa.map((d, i) => Math.max(d, pb[i]));
    assert.deepEqual(got.shapes[0], [...out, m, n]);
    const ref = new Float32Array(got.values[0].length);
    const batches = out.reduce((p, q) => p * q, 1);
    for (let o = 0; o < batches; o++) {
      let rem = o, ia = 0, ib = 0, sa = 1, sb = 1;
      for (let d = rank - 1; d >= 0; d--) {
        const coord = rem % out[d];
        rem = Math.floor(rem / out[d]);
        ia += (pa[d] === 1 ? 0 : coord) * sa;
        ib += (pb[d] === 1 ? 0 : coord) * sb;
        sa *= pa[d];
        sb *= pb[d];
      }
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < k; t++) s += av[ia * m * k + i * k + t] * bv[ib * k * n + t * n + j];
          ref[o * m * n + i * n + j] = s;
        }
      }
    }
    const e = relError(got.values[0], ref);
    assert.ok(e <= TOL, `broadcast ${as} x ${bs}: relative error ${e}`);
  }
});

Deno.test("fused train-mode BatchNorm matches tfjs's composite BatchNorm on cpu, with gradients", async () => {
  const rng = new Rng(16);
  for (const shape of [[4, 5, 3, 6], [2, 1, 1, 3], [8, 4, 4, 16]]) {
    const c = shape[3];
    const xv = randomValues(rng, shape).map((v) => 3 + 2 * v); // off-centre, to exercise the shift
    const gv = randomValues(rng, [c]), bv = randomValues(rng, [c]);
    const rv = randomValues(rng, shape), rm = randomValues(rng, [c]), rvv = randomValues(rng, [c]);
    const ref = await onBackend("cpu", (tf) => {
      const x = tf.tensor(xv, shape), g = tf.tensor(gv, [c]), b = tf.tensor(bv, [c]);
      const f = (xx: TfTensor, gg: TfTensor, bb: TfTensor) => {
        const { mean, variance } = tf.moments(xx, [0, 1, 2]);
        const y = tf.batchNorm(xx, mean, variance, bb, gg, 1e-5);
        // The loss also reads the statistics, so their gradient paths are checked too.
        return tf.addN([
          tf.sum(tf.mul(y, tf.tensor(rv, shape))),
          tf.sum(tf.mul(mean, tf.tensor(rm, [c]))),
          tf.sum(tf.mul(variance, tf.tensor(rvv, [c]))),
        ]);
      };
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return [tf.batchNorm(x, mean, variance, b, g, 1e-5), mean, variance, ...tf.grads(f)([x, g, b])];
    });
    const got = await onBackend("wasm", (tf) => {
      const x = tf.tensor(xv, shape), g = tf.tensor(gv, [c]), b = tf.tensor(bv, [c]);
      const run = (xx: TfTensor, gg: TfTensor, bb: TfTensor) =>
        tf.engine().runKernel(
          BATCH_NORM_TRAIN,
          { x: xx, scale: gg, offset: bb },
          { varianceEpsilon: 1e-5 } as never,
        ) as TfTensor[];
      const f = (xx: TfTensor, gg: TfTensor, bb: TfTensor) => {
        const [y, mean, variance] = run(xx, gg, bb);
        return tf.addN([
          tf.sum(tf.mul(y, tf.tensor(rv, shape))),
          tf.sum(tf.mul(mean, tf.tensor(rm, [c]))),
          tf.sum(tf.mul(variance, tf.tensor(rvv, [c]))),
        ]);
      };
      return [...run(x, g, b), ...tf.grads(f)([x, g, b])];
    });
    const names = ["y", "mean", "variance", "dx", "dgamma", "dbeta"];
    ref.values.forEach((r, i) => {
      assert.deepEqual(got.shapes[i], ref.shapes[i]);
      const e = relError(got.values[i], r);
      assert.ok(e <= TOL, `batchnorm ${shape} ${names[i]}: relative error ${e}`);
    });
  }
});

Deno.test("eval-mode FusedBatchNorm and its input gradient match cpu", async () => {
  const rng = new Rng(18);
  const cases: { shape: number[]; params: number[]; scale: boolean; offset: boolean }[] = [
    { shape: [4, 5, 3, 6], params: [6], scale: true, offset: true },
    { shape: [2, 3, 3, 4], params: [4], scale: false, offset: true },
    { shape: [3, 7], params: [7], scale: true, offset: false },
    { shape: [2, 3, 3, 4], params: [2, 3, 3, 4], scale: true, offset: true }, // not [C]: stock path
  ];
  for (const c of cases) {
    const xv = randomValues(rng, c.shape), rv = randomValues(rng, c.shape);
    const mv = randomValues(rng, c.params), vv = randomValues(rng, c.params).map((v) => v * v + 0.1);
    const gv = randomValues(rng, c.params), bv = randomValues(rng, c.params);
    await compare(`FusedBatchNorm ${JSON.stringify(c)}`, (tf) => {
      const f = (x: TfTensor) =>
        tf.batchNorm(
          x,
          tf.tensor(mv, c.params),
          tf.tensor(vv, c.params),
          c.offset ? tf.tensor(bv, c.params) : undefined,
          c.scale ? tf.tensor(gv, c.params) : undefined,
          1e-5,
        );
      const x = tf.tensor(xv, c.shape);
      // tfjs's own gradient machinery fails on batchNorm without scale or offset (any backend).
      if (!c.scale || !c.offset) return f(x);
      return [f(x), tf.grad((v: TfTensor) => tf.sum(tf.mul(f(v), tf.tensor(rv, c.shape))))(x)];
    });
  }
});

Deno.test("Identity shares the buffer instead of copying it", async () => {
  const tf = await initTfjs("wasm");
  const x = tf.tensor1d([1, 2, 3]);
  const buffers = tf.memory().numDataBuffers;
  const y = tf.clone(x);
  assert.equal(tf.memory().numDataBuffers, buffers);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]); // still valid after the original goes
  y.dispose();
});

Deno.test("resnet8 eval forward and input gradient (the oracle's teacher pass) match cpu", async () => {
  const g = buildModel("resnet8", { numClasses: 10 });
  const weights = perturbedWeights(5);
  for (const [name, t] of weights) {
    if (name.endsWith("running_var")) t.data.forEach((_, i) => t.data[i] = 0.5 + Math.abs(Math.sin(i + 1)));
    if (name.endsWith("running_mean")) t.data.forEach((_, i) => t.data[i] = 0.1 * Math.cos(i));
  }
  const rng = new Rng(19);
  const n = 2;
  const batch = {
    x: randomValues(rng, [n, 3, 16, 16]),
    y: Int32Array.from({ length: n }, () => rng.int(10)),
    n,
    shape: [3, 16, 16] as const,
  };
  const run = async (backend: "cpu" | "wasm") => {
    const engine = await TfjsEngine.create(backend);
    const m = await engine.loadFrozen(g, weights);
    const out = { logits: await m.forward(batch), grad: await m.inputGradient(batch, "sum") };
    m.dispose();
    return out;
  };
  const ref = await run("cpu");
  const got = await run("wasm");
  const e1 = relError(got.logits, ref.logits), e2 = relError(got.grad, ref.grad);
  assert.ok(e1 <= TOL, `logits relative error ${e1}`);
  assert.ok(e2 <= TOL, `input gradient relative error ${e2}`);
  assert.ok(ref.grad.some((v) => v !== 0));
});

Deno.test("unsupported attributes fail with a clear error", async () => {
  const tf = await initTfjs("wasm");
  const x = tf.zeros([1, 4, 4, 2]), dy = tf.zeros([1, 4, 4, 2]), w = tf.zeros([3, 3, 2, 2]);
  assert.throws(
    () =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        strides: 1,
        pad: 1,
        dataFormat: "NCHW",
        filterShape: [3, 3, 2, 2],
      } as never),
    /supports dataFormat NHWC only/,
  );
  assert.throws(
    () =>
      tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, {
        strides: 1,
        pad: 1,
        dataFormat: "NCHW",
        inputShape: [1, 4, 4, 2],
      } as never),
    /supports dataFormat NHWC only/,
  );
  const ints = tf.zeros([2, 2], "int32");
  assert.throws(
    () =>
      tf.engine().runKernel(
        "BatchMatMul",
        { a: ints, b: ints },
        { transposeA: false, transposeB: false } as never,
      ),
    /needs float32/,
  );
  tf.dispose([x, dy, w, ints]);
});

/** A resnet8 state dict with non-trivial BatchNorm parameters and statistics. */
function perturbedWeights(seed: number): StateDict {
  const g = buildModel("resnet8", { numClasses: 10 });
  const sd = initStateDict(g, seed);
  const rng = new Rng(seed + 1);
  for (const [name, t] of sd) {
    if (/bn1\.weight|bn2\.weight|downsample\.1\.weight/.test(name)) {
      t.data.forEach((_, i) => t.data[i] = 1 + 0.2 * rng.normal());
    }
    if (/\.bias$/.test(name) && !name.startsWith("fc")) {
      t.data.forEach((_, i) => t.data[i] = 0.1 * rng.normal());
    }
  }
  return sd;
}

Deno.test("resnet8: two SGD steps on wasm match the same steps on cpu", async () => {
  const g = buildModel("resnet8", { numClasses: 10 });
  const weights = perturbedWeights(3);
  const rng = new Rng(17);
  // The cpu backend is slow: batch 2 of 16x16 images keeps this to seconds (every stage,
  // stride-2 block and shortcut still runs).
  const n = 2;
  const x = randomValues(rng, [n, 3, 16, 16]);
  const y = Int32Array.from({ length: n }, () => rng.int(10));
  const batch = { x, y, n, shape: [3, 16, 16] as const };
  const sgd = { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 };
  const run = async (backend: "cpu" | "wasm") => {
    const engine = await TfjsEngine.create(backend);
    const before = engine.liveTensors();
    const m = await engine.loadTrainable(g, weights, sgd);
    const losses: number[] = [];
    for (let i = 0; i < 2; i++) {
      losses.push((await m.trainStep(batch, null, { ceWeight: 1, alpha: 0, temperature: 1 }, 0.1)).loss);
    }
    const sd = await m.stateDict();
    m.dispose();
    return { losses, sd, leaked: engine.liveTensors() - before };
  };
  const ref = await run("cpu");
  const got = await run("wasm");
  assert.ok(
    Math.abs(got.losses[0] - ref.losses[0]) <= TOL * Math.max(1, ref.losses[0]),
    `loss ${got.losses} vs ${ref.losses}`,
  );
  assert.ok(
    Math.abs(got.losses[1] - ref.losses[1]) <= TOL * Math.max(1, ref.losses[1]),
    `loss ${got.losses} vs ${ref.losses}`,
  );
  let worst = 0;
  for (const [name, t] of ref.sd) {
    const e = relError(got.sd.get(name)!.data, t.data);
    assert.ok(e <= TOL, `${name}: relative error ${e.toExponential(2)} after two steps`);
    worst = Math.max(worst, e);
  }
  // The step must actually have changed the weights, or the comparison proves nothing.
  assert.ok(relError(got.sd.get("conv1.weight")!.data, weights.get("conv1.weight")!.data) > 1e-3);
  console.log(`resnet8 two steps: worst parameter relative error ${worst.toExponential(2)}`);
});
