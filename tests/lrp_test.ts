/**
 * LRP rules through the CIFAR ResNets and WRNs (tfjs wasm, small shapes): BatchNorm merging is
 * exact, relevance is conserved layer by layer on bias-free networks, LRP-0 equals gradient x
 * input, epsilon / gamma reduce to LRP-0 at 0, z+ keeps relevance non-negative, residual adds
 * split in proportion, every rule matches a naive host implementation on a strided conv, and
 * every rule runs on resnet8 and wrn_16_1. The checks that need only the relevance map (LRP-0 =
 * gradient x input, epsilon / gamma at 0 = LRP-0, continuity in epsilon, whole-network
 * conservation) also run through the engine seam on every engine (onnxruntime computes LRP as a
 * modified backward pass in its ONNX graph); the per-layer checks read the tfjs analyzer's trace.
 */
import assert from "node:assert/strict";
import type { TfTensor } from "../lib/deps.ts";
import { initTfjs } from "../lib/engines/tfjs/backend.ts";
import { TfjsNetwork } from "../lib/engines/tfjs/network.ts";
import { LrpAnalyzer, startingRelevance } from "../lib/engines/tfjs/lrp/lrp.ts";
import { type LrpParams, normalisedBounds, resolveLrpParams } from "../lib/oracle/options.ts";
import { gradInputRelevance } from "../lib/engines/tfjs/lrp/relevance.ts";
import { addRelevance, convOp, type LayerRule, linearRelevance } from "../lib/engines/tfjs/lrp/rules.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";
import type { StateDict } from "../lib/tensor.ts";
import type { FrozenModel, LabelledBatch } from "../lib/engines/engine.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { ORACLE_ENGINES } from "./engines.ts";

const tf = await initTfjs("wasm");
const ARCHS = ["resnet8", "wrn_16_1"] as const;
const LRP_RULES = ["lrp-epsilon", "lrp-gamma", "lrp-zplus"] as const;
const N = 3, S = 8, K = 10;

/**
 * Random eval-mode BatchNorm statistics and affine parameters. `biasFree` zeroes the running
 * means, BatchNorm biases and the classifier bias, so every merged layer has no bias.
 */
function weights(arch: string, seed: number, biasFree: boolean): StateDict {
  const g = buildModel(arch, { numClasses: K });
  const sd = initStateDict(g, seed);
  const rng = new Rng(seed + 100);
  for (const n of g.nodes) {
    if (n.op === "batchnorm") {
      const set = (name: string, f: () => number) => sd.get(name)!.data.forEach((_, i, d) => (d[i] = f()));
      set(n.weight, () => 0.5 + rng.uniform());
      set(n.runningVar, () => 0.5 + rng.uniform());
      set(n.runningMean, () => (biasFree ? 0 : 0.3 * rng.normal()));
      set(n.bias, () => (biasFree ? 0 : 0.3 * rng.normal()));
    }
    if (n.op === "linear" && n.bias) {
      sd.get(n.bias)!.data.forEach((_, i, d) => (d[i] = biasFree ? 0 : 0.1 * rng.normal()));
    }
  }
  return sd;
}

function setup(arch: string, biasFree: boolean, seed = 0) {
  const g = buildModel(arch, { numClasses: K });
  const net = new TfjsNetwork(tf, g, weights(arch, seed, biasFree));
  const lrp = new LrpAnalyzer(tf, g, (n) => net.vars.get(n)!);
  return { g, net, lrp, dispose: () => (lrp.dispose(), net.dispose()) };
}

function batch(seed: number, nonNegative = false): [TfTensor, TfTensor] {
  const x = tf.randomNormal([N, S, S, 3], 0, 1, "float32", seed);
  const labels = Array.from({ length: N }, (_, i) => (3 * i + seed) % K);
  return [nonNegative ? tf.abs(x) : x, tf.tensor1d(labels, "int32")];
}

function maxAbs(t: TfTensor): number {
  return tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]);
}

function maxAbsDiff(a: TfTensor, b: TfTensor): number {
  return tf.tidy(() => maxAbs(tf.sub(a, b)));
}

for (const arch of ARCHS) {
  Deno.test(`canonized forward (BatchNorm merged) equals the network's eval forward (${arch})`, () => {
    const m = setup(arch, false);
    tf.tidy(() => {
      const [x] = batch(1);
      const want = m.net.forward(x, false).logits;
      const got = m.lrp.forward(x).logits;
      const d = maxAbsDiff(want, got);
      assert.ok(d <= 1e-5 * Math.max(1, maxAbs(want)), `logits differ by ${d}`);
    });
    m.dispose();
  });

  // Tolerance: |sum in - sum out| <= 1e-4 * (sum of |relevance| at the logits) per layer and sample.
  for (
    const [rule, params] of [
      ["lrp-epsilon", { epsilon: 0 }],
      ["lrp-gamma", { gamma: 0.25 }],
      ["lrp-zplus", {}],
      ["lrp-gamma", {
        gamma: 0.25,
        firstLayer: "zB",
        inputBounds: normalisedBounds([0.5, 0.5, 0.5], [0.2, 0.2, 0.2]),
      }],
    ] as const
  ) {
    const label = `${rule}${params.firstLayer ? ", zB first layer" : ""}`;
    Deno.test(`relevance is conserved layer by layer on a bias-free ${arch} (${label})`, () => {
      const m = setup(arch, true);
      tf.tidy(() => {
        const [x0, y] = batch(2);
        // zB needs x inside the data bounds [-2.5, 2.5].
        const x = tf.clipByValue(x0, -2.5, 2.5);
        const r = m.lrp.relevance(x, y, rule, params as LrpParams, "mean", true);
        const start = startingRelevance(tf, r.logits, y, "mean");
        const scale = tf.sum(tf.abs(start)).dataSync()[0] / N;
        assert.ok(scale > 0);
        assert.equal(r.trace!.length, m.lrp.canonized.layers.length);
        for (const t of r.trace!) {
          const d = maxAbsDiff(t.relevanceIn, t.relevanceOut);
          assert.ok(d <= 1e-4 * scale, `${t.name} (${t.op}): in ${t.relevanceIn} vs out ${t.relevanceOut}`);
        }
        const total = tf.sum(r.relevance, [1, 2, 3]), want = tf.sum(start, 1);
        assert.ok(maxAbsDiff(total, want) <= 1e-4 * scale, `input total ${total} vs logits total ${want}`);
      });
      m.dispose();
    });
  }

  for (const biasFree of [true, false]) {
    Deno.test(`LRP-0 equals gradient x input (${arch}, ${biasFree ? "bias-free" : "with BatchNorm shifts and biases"})`, () => {
      const m = setup(arch, biasFree);
      tf.tidy(() => {
        const [x, y] = batch(3);
        for (const reduction of ["mean", "sum"] as const) {
          const gi = gradInputRelevance(tf, m.net, x, y, reduction);
          const lrp0 = m.lrp.relevance(x, y, "lrp-epsilon", { epsilon: 0 }, reduction).relevance;
          const d = maxAbsDiff(gi, lrp0), scale = maxAbs(gi);
          assert.ok(scale > 0);
          assert.ok(
            d <= 1e-4 * scale,
            `${reduction}: LRP-0 differs from gradient x input by ${d} (max ${scale})`,
          );
        }
      });
      m.dispose();
    });
  }

  Deno.test(`LRP-epsilon and LRP-gamma at 0 equal LRP-0; epsilon moves away continuously (${arch})`, () => {
    const m = setup(arch, false);
    tf.tidy(() => {
      const [x, y] = batch(4);
      const rel = (rule: (typeof LRP_RULES)[number], p: LrpParams) =>
        m.lrp.relevance(x, y, rule, p, "mean").relevance;
      const gi = gradInputRelevance(tf, m.net, x, y, "mean");
      const scale = maxAbs(gi);
      const eps0 = rel("lrp-epsilon", { epsilon: 0 });
      assert.ok(maxAbsDiff(eps0, gi) <= 1e-4 * scale);
      assert.ok(maxAbsDiff(rel("lrp-gamma", { gamma: 0 }), eps0) <= 1e-4 * scale, "gamma 0 is not LRP-0");
      // LRP-epsilon is continuous in epsilon: the distance to LRP-0 grows from ~0.
      const dist = [1e-8, 1e-4, 1].map((e) => maxAbsDiff(rel("lrp-epsilon", { epsilon: e }), eps0) / scale);
      assert.ok(dist[0] <= 1e-3 && dist[0] < dist[1] && dist[1] < dist[2], `distances ${dist}`);
      assert.ok(dist[2] > 1e-2, "epsilon 1 changes nothing");
      assert.ok(
        maxAbsDiff(rel("lrp-gamma", { gamma: 0.25 }), eps0) > 1e-2 * scale,
        "gamma 0.25 changes nothing",
      );
    });
    m.dispose();
  });

  Deno.test(`LRP-z+ gives non-negative relevance for non-negative inputs and relevance (${arch})`, () => {
    const m = setup(arch, false);
    tf.tidy(() => {
      const [x, y] = batch(5, true);
      const { values, logits } = m.lrp.forward(x);
      // Non-negative relevance at the logits: |z_y| on the true class.
      const start = tf.mul(tf.abs(logits), tf.oneHot(y, K));
      const p = resolveLrpParams({ firstLayer: "same" });
      const r = m.lrp.propagate(values, start, "lrp-zplus", p).relevance;
      const data = r.dataSync();
      assert.ok(data.every((v) => v >= 0), `min relevance ${Math.min(...data)}`);
      assert.ok(data.some((v) => v > 0), "all relevance vanished");
    });
    m.dispose();
  });

  for (const rule of LRP_RULES) {
    Deno.test(`${rule} runs on ${arch}: finite, input-shaped, non-zero`, () => {
      const m = setup(arch, false);
      tf.tidy(() => {
        const [x, y] = batch(6);
        const r = m.lrp.relevance(x, y, rule, {}, "mean").relevance;
        assert.deepEqual(r.shape, x.shape);
        const d = r.dataSync();
        assert.ok(d.every(Number.isFinite), "non-finite relevance");
        assert.ok(d.some((v) => v !== 0), "all-zero relevance");
      });
      m.dispose();
    });
  }
}

Deno.test("a residual add splits relevance in proportion to each rule's contributions", () => {
  tf.tidy(() => {
    const a = tf.tensor1d([1, -1, 2]), b = tf.tensor1d([3, 3, -0.5]), R = tf.tensor1d([8, 8, 3]);
    const split = (rule: LayerRule) =>
      addRelevance(tf, rule, [a, b], R, 1e-9).map((t) => Array.from(t.dataSync()));
    const close = (got: number[][], want: number[][]) =>
      got.forEach((row, i) =>
        row.forEach((v, j) => assert.ok(Math.abs(v - want[i][j]) < 1e-5, `${got} vs ${want}`))
      );
    // LRP-0 / epsilon: a / (a + b) * R, signs kept.
    close(split({ name: "epsilon", epsilon: 0.25 }), [[2, -4, 4], [6, 12, -1]]);
    // z+: positive parts only.
    close(split({ name: "zplus" }), [[2, 0, 3], [6, 8, 0]]);
    // gamma 0.5 (sums are positive, so positive parts are boosted by 1.5).
    close(split({ name: "gamma", gamma: 0.5 }), [[8 * 1.5 / 6, -8 / 3.5, 3 * 3 / 2.5], [
      8 * 4.5 / 6,
      8 * 4.5 / 3.5,
      -1.5 / 2.5,
    ]]);
  });
});

/** Naive host LRP for one NHWC conv (stride, pad) from explicit contributions z_ij. */
function naiveConvRelevance(
  x: Float32Array,
  [n, h, w, ci]: number[],
  wt: Float32Array,
  [kh, kw, , co]: number[],
  bias: Float32Array | null,
  stride: number,
  pad: number,
  rel: Float32Array,
  rule: { name: string; epsilon?: number; gamma?: number; low?: number[]; high?: number[] },
): Float64Array {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1, ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(x.length);
  const pos = (v: number) => Math.max(v, 0), neg = (v: number) => Math.min(v, 0);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let o = 0; o < co; o++) {
          const terms: [number, number][] = [];
          let zj = bias ? bias[o] : 0;
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (let c = 0; c < ci; c++) {
                const i = ((b * h + iy) * w + ix) * ci + c;
                const wv = wt[((ky * kw + kx) * ci + c) * co + o];
                terms.push([i, x[i] * wv]);
                zj += x[i] * wv;
                if (rule.name === "zB") {
                  terms[terms.length - 1].push(rule.low![c] * pos(wv) + rule.high![c] * neg(wv));
                }
              }
            }
          }
          const bj = bias ? bias[o] : 0;
          let contrib: number[], den: number;
          switch (rule.name) {
            case "epsilon":
              contrib = terms.map((t) => t[1]);
              den = zj + (zj >= 0 ? 1 : -1) * (rule.epsilon ?? 0);
              break;
            case "gamma": {
              const up = zj >= 0, g = rule.gamma!;
              contrib = terms.map((t) => t[1] + g * (up ? pos(t[1]) : neg(t[1])));
              den = zj + g * (up ? pos(bj) : neg(bj)) + contrib.reduce((s, c, k) => s + c - terms[k][1], 0);
              break;
            }
            case "zplus":
              contrib = terms.map((t) => pos(t[1]));
              den = contrib.reduce((s, c) => s + c, 0);
              break;
            default: // zB
              contrib = terms.map((t) => t[1] - (t as number[])[2]);
              den = contrib.reduce((s, c) => s + c, 0);
          }
          const rj = rel[((b * oh + oy) * ow + ox) * co + o];
          if (den === 0) continue;
          terms.forEach((t, k) => (out[t[0]] += (contrib[k] / den) * rj));
        }
      }
    }
  }
  return out;
}

for (const nonNegative of [false, true]) {
  Deno.test(`every conv rule equals a naive host implementation (stride 2, pad 1, ${nonNegative ? "non-negative" : "signed"} input)`, () => {
    const rng = new Rng(nonNegative ? 11 : 12);
    const xs = [2, 5, 5, 3], ws = [3, 3, 3, 4];
    const x = Float32Array.from({ length: 150 }, () => (nonNegative ? Math.abs(rng.normal()) : rng.normal()));
    const wt = Float32Array.from({ length: 108 }, () => rng.normal());
    const bias = Float32Array.from({ length: 4 }, () => 0.5 * rng.normal());
    const rel = Float32Array.from({ length: 2 * 3 * 3 * 4 }, () => rng.normal());
    const cases: [LayerRule | null, Parameters<typeof naiveConvRelevance>[8], boolean][] = [
      [{ name: "epsilon", epsilon: 0 }, { name: "epsilon", epsilon: 0 }, true],
      [{ name: "epsilon", epsilon: 0.5 }, { name: "epsilon", epsilon: 0.5 }, true],
      [{ name: "gamma", gamma: 0.25 }, { name: "gamma", gamma: 0.25 }, true],
      [{ name: "zplus" }, { name: "zplus" }, false],
      [null, { name: "zB", low: [-3, -3.5, -4], high: [3, 3.5, 4] }, false],
    ];
    for (const [rule, ref, withBias] of cases) {
      const got = tf.tidy(() => {
        const r: LayerRule = rule ?? { name: "zB", low: ref.low!, high: ref.high! };
        const t = linearRelevance(
          tf,
          r,
          convOp(tf, 2, 1),
          tf.tensor4d(x, xs as [number, number, number, number]),
          tf.tensor4d(wt, ws as [number, number, number, number]),
          withBias ? tf.tensor1d(bias) : null,
          tf.tensor4d(rel, [2, 3, 3, 4]),
          0,
          nonNegative,
        );
        return t.dataSync() as Float32Array;
      });
      const want = naiveConvRelevance(x, xs, wt, ws, withBias ? bias : null, 2, 1, rel, ref);
      let d = 0, scale = 0;
      for (let i = 0; i < want.length; i++) {
        d = Math.max(d, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      assert.ok(scale > 0);
      assert.ok(d <= 1e-4 * scale, `${ref.name}: max diff ${d} (scale ${scale})`);
    }
  });
}

Deno.test("zB needs input bounds with the network's channel count", () => {
  const m = setup("resnet8", false);
  tf.tidy(() => {
    const [x, y] = batch(7);
    assert.throws(() => m.lrp.relevance(x, y, "lrp-zplus", { firstLayer: "zB" }, "mean"), /inputBounds/);
    assert.throws(
      () =>
        m.lrp.relevance(
          x,
          y,
          "lrp-zplus",
          { firstLayer: "zB", inputBounds: { low: [-1], high: [1] } },
          "mean",
        ),
      /channels/,
    );
  });
  m.dispose();
});

Deno.test("no tensors leak from an LRP pass", () => {
  const m = setup("wrn_16_1", false);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const [x, y] = batch(8);
    m.lrp.relevance(x, y, "lrp-gamma", {}, "sum", true);
  });
  assert.equal(tf.memory().numTensors, before);
  m.dispose();
});

Deno.test("the forward-conv transpose equals tf.conv2dTranspose (strides 1-2, kernels 1-3, odd sizes)", () => {
  tf.tidy(() => {
    for (
      const [h, k, stride, pad] of [[8, 3, 1, 1], [8, 3, 2, 1], [7, 3, 2, 1], [8, 1, 2, 0], [7, 1, 2, 0], [
        6,
        3,
        1,
        0,
      ]]
    ) {
      const x = tf.randomNormal([2, h, h, 3], 0, 1, "float32", h + k);
      const w = tf.randomNormal([k, k, 3, 5], 0, 1, "float32", stride);
      const op = convOp(tf, stride, pad);
      const s = tf.randomNormal(op.apply(x, w).shape, 0, 1, "float32", 9);
      const want = tf.conv2dTranspose(
        s as import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D,
        w as import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D,
        x.shape as [number, number, number, number],
        stride,
        pad,
      );
      const got = op.transpose(s, w, x);
      assert.deepEqual(got.shape, x.shape);
      assert.ok(maxAbsDiff(got, want) <= 1e-5 * maxAbs(want), `h ${h} k ${k} stride ${stride} pad ${pad}`);
    }
  });
});

/** The same random batch as {@link batch}, as an NCHW host batch. */
function hostBatch(seed: number): LabelledBatch {
  const [x, y] = batch(seed);
  const nchw = tf.tidy(() => tf.transpose(x, [0, 3, 1, 2]).dataSync() as Float32Array);
  const labels = y.dataSync() as Int32Array;
  x.dispose();
  y.dispose();
  return { x: nchw, y: labels, n: N, shape: [3, S, S] };
}

const hostMaxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};
const hostMaxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

for (const choice of ORACLE_ENGINES) {
  const engine = await createEngine(choice);
  const relevanceOf = async (
    t: FrozenModel,
    b: LabelledBatch,
    rule: (typeof LRP_RULES)[number],
    p: LrpParams,
    reduction: "mean" | "sum",
  ) =>
    (await t.oracle(b, { gamma: 0, recNum: 1, reduction, relevance: rule, lrp: p }, { relevance: true }))
      .relevance!;
  for (const arch of ARCHS) {
    for (const biasFree of [true, false]) {
      Deno.test(`LRP-0 equals gradient x input through the engine seam (${arch}, ${biasFree ? "bias-free" : "with BatchNorm shifts and biases"}, ${choice.label})`, async () => {
        const g = buildModel(arch, { numClasses: K });
        const t = await engine.loadFrozen(g, weights(arch, 0, biasFree));
        try {
          const b = hostBatch(3);
          for (const reduction of ["mean", "sum"] as const) {
            const grad = await t.inputGradient(b, reduction);
            const gi = b.x.map((v, i) => -v * grad[i]);
            const lrp0 = await relevanceOf(t, b, "lrp-epsilon", { epsilon: 0 }, reduction);
            const d = hostMaxDiff(gi, lrp0), scale = hostMaxAbs(gi);
            assert.ok(scale > 0);
            assert.ok(
              d <= 1e-4 * scale,
              `${reduction}: LRP-0 differs from gradient x input by ${d} (max ${scale})`,
            );
          }
        } finally {
          t.dispose();
        }
      });
    }

    Deno.test(`LRP-epsilon and LRP-gamma at 0 equal LRP-0 through the engine seam; epsilon moves away continuously (${arch}, ${choice.label})`, async () => {
      const g = buildModel(arch, { numClasses: K });
      const t = await engine.loadFrozen(g, weights(arch, 0, false));
      try {
        const b = hostBatch(4);
        const grad = await t.inputGradient(b, "mean");
        const gi = b.x.map((v, i) => -v * grad[i]);
        const scale = hostMaxAbs(gi);
        const eps0 = await relevanceOf(t, b, "lrp-epsilon", { epsilon: 0 }, "mean");
        assert.ok(hostMaxDiff(eps0, gi) <= 1e-4 * scale);
        assert.ok(
          hostMaxDiff(await relevanceOf(t, b, "lrp-gamma", { gamma: 0 }, "mean"), eps0) <= 1e-4 * scale,
          "gamma 0 is not LRP-0",
        );
        const dist: number[] = [];
        for (const e of [1e-8, 1e-4, 1]) {
          dist.push(
            hostMaxDiff(await relevanceOf(t, b, "lrp-epsilon", { epsilon: e }, "mean"), eps0) / scale,
          );
        }
        assert.ok(dist[0] <= 1e-3 && dist[0] < dist[1] && dist[1] < dist[2], `distances ${dist}`);
        assert.ok(dist[2] > 1e-2, "epsilon 1 changes nothing");
        assert.ok(
          hostMaxDiff(await relevanceOf(t, b, "lrp-gamma", { gamma: 0.25 }, "mean"), eps0) > 1e-2 * scale,
          "gamma 0.25 changes nothing",
        );
      } finally {
        t.dispose();
      }
    });
  }
}

// Creating the engines above (webgpu among them) switched tfjs's global backend; the host-level
// tests registered earlier use `tf` directly on wasm. Each engine switches back to its own backend
// before every call, so restoring wasm here serves both.
await tf.setBackend("wasm");
