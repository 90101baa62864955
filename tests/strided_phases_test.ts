/**
 * The phase form of strided convolutions' input gradients (lib/engines/onnxruntime/strided_phases.ts)
 * against a float64 transposed convolution in plain JS, for several kernel sizes, strides and
 * paddings, with one and with two strided convolutions of the same input adding up in phase
 * form, and against the zero-inserted form it replaces (bitwise: the same products in the same
 * order).
 */
import assert from "node:assert/strict";
import { OnnxBuilder } from "../lib/onnx/builder.ts";
import { convOut } from "../lib/graph.ts";
import { flipTranspose } from "../lib/engines/onnxruntime/frozen_layout.ts";
import { gradAccumulator } from "../lib/engines/onnxruntime/grad_accumulator.ts";
import {
  inputGradPads,
  NCHWC_DOMAIN,
  reorderKernel,
  zeroInsertBlocked,
} from "../lib/engines/onnxruntime/nchwc.ts";
import {
  phaseGeometry,
  phaseKernel,
  phaseKernelOp,
  pushPhaseInputGrad,
} from "../lib/engines/onnxruntime/strided_phases.ts";
import { createSession, runSession } from "../lib/engines/onnxruntime/session.ts";
import { Rng } from "../lib/rng.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { OnnxruntimeEngine } from "../lib/engines/onnxruntime/engine.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import type { OracleOptions } from "../lib/engines/engine.ts";
import { nontrivialStateDict, randomBatch } from "./random_models.ts";

const BLOCK = 16;

interface Case {
  co: number;
  ci: number;
  k: number;
  stride: number;
  pad: number;
  /** Input extent (square). */
  h: number;
}

/** The convolution's output extent. */
const outOf = (c: Case) => convOut(c.h, c);

const geometryOf = (c: Case) =>
  phaseGeometry({ h: c.h, w: c.h, oh: outOf(c), ow: outOf(c), k: c.k, stride: c.stride, pad: c.pad });

/** dL/dx of a convolution (NCHW, weights [co, ci, k, k]) at input extent h, in float64. */
function referenceInputGrad(dy: Float32Array, w: Float32Array, n: number, c: Case): Float64Array {
  const { co, ci, k, stride: s, pad: p, h } = c;
  const oh = outOf(c);
  const dx = new Float64Array(n * ci * h * h);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < co; o++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < oh; j++) {
          const g = dy[((b * co + o) * oh + i) * oh + j];
          for (let q = 0; q < ci; q++) {
            for (let u = 0; u < k; u++) {
              for (let v = 0; v < k; v++) {
                const [y, x] = [s * i - p + u, s * j - p + v];
                if (y < 0 || y >= h || x < 0 || x >= h) continue;
                dx[((b * ci + q) * h + y) * h + x] += g * w[((o * ci + q) * k + u) * k + v];
              }
            }
          }
        }
      }
    }
  }
  return dx;
}

function random(count: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: count }, () => rng.uniform() * 2 - 1);
}

/** Runs a graph from plain NCHW inputs `dy<i>` to the plain NCHW output `dx`. */
async function run(model: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>) {
  const session = await createSession(model, 1);
  try {
    return (await runSession(session, feeds)).dx;
  } finally {
    await session.release();
  }
}

/**
 * The summed input gradient of `cases` (convolutions of one input) in phase form; with
 * `weightsAsInput` the phase kernels come from graph inputs (training), else constants (frozen).
 */
function phaseModel(n: number, cases: Case[], weights: Float32Array[], weightsAsInput: boolean): Uint8Array {
  const b = new OnnxBuilder("phases");
  const grads = gradAccumulator(b, "out", "d_out");
  cases.forEach((c, i) => {
    const geo = geometryOf(c)!;
    const oh = outOf(c);
    const dy = b.op("ReorderInput", [b.input(`dy${i}`, "float32", [n, c.co, oh, oh])], {}, NCHWC_DOMAIN);
    const kernel = weightsAsInput
      ? phaseKernelOp(b, b.input(`w${i}`, "float32", [c.co, c.ci, c.k, c.k]), c.co, c.ci, geo, BLOCK)
      : b.constant(phaseKernel(weights[i], c.co, c.ci, geo, BLOCK), [
        c.stride ** 2 * c.ci,
        c.co,
        geo.taps,
        geo.taps,
      ]);
    pushPhaseInputGrad(b, grads, "x", dy, kernel, geo, { n, c: c.ci, block: BLOCK });
  });
  b.output(b.op("ReorderOutput", [grads.take("x")!], { channels: cases[0].ci }, NCHWC_DOMAIN), "dx");
  return b.toModel();
}

/**
 * The zero-inserted form (the one the phase form replaces), constant kernels; null where it has
 * no padding for the geometry (input extents that are not a multiple of the stride).
 */
function zeroInsertModel(n: number, c: Case, w: Float32Array): Uint8Array | null {
  const oh = outOf(c);
  const pads = inputGradPads({ h: c.h, w: c.h, oh, ow: oh, k: c.k, stride: c.stride, pad: c.pad });
  if (!pads) return null;
  const [pl, prH, prW] = pads;
  const b = new OnnxBuilder("zero_insert");
  const dy = b.op("ReorderInput", [b.input("dy0", "float32", [n, c.co, oh, oh])], {}, NCHWC_DOMAIN);
  const r = reorderKernel(flipTranspose(c, w), c.ci, c.co, c.k, BLOCK, true);
  const src = zeroInsertBlocked(b, dy, { n, c: c.co, oh, ow: oh, stride: c.stride, block: BLOCK });
  const g = b.op("Conv", [src, b.constant(r.data, r.dims), ""], {
    kernel_shape: [c.k, c.k],
    pads: [pl, pl, prH, prW],
  }, NCHWC_DOMAIN);
  b.output(b.op("ReorderOutput", [g], { channels: c.ci }, NCHWC_DOMAIN), "dx");
  return b.toModel();
}

function maxRelError(got: Float32Array, want: Float64Array): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    err = Math.max(err, Math.abs(got[i] - want[i]));
  }
  return err / scale;
}

const SINGLE: Case[] = [
  { co: 32, ci: 16, k: 3, stride: 2, pad: 1, h: 16 }, // ResNet downsampling 3x3 (2x2 phase kernel)
  { co: 32, ci: 16, k: 1, stride: 2, pad: 0, h: 16 }, // its 1x1 shortcut (three zero phases)
  { co: 16, ci: 32, k: 5, stride: 2, pad: 2, h: 10 },
  { co: 16, ci: 16, k: 3, stride: 3, pad: 1, h: 12 },
  { co: 16, ci: 16, k: 4, stride: 2, pad: 1, h: 12 }, // even kernel
  // Input extents that are not a multiple of the stride: the phases' extra row and column are cut.
  { co: 32, ci: 16, k: 3, stride: 2, pad: 1, h: 7 }, // 7 -> 4
  { co: 32, ci: 16, k: 1, stride: 2, pad: 0, h: 7 }, // 7 -> 4 shortcut
  { co: 16, ci: 16, k: 3, stride: 2, pad: 0, h: 8 }, // 8 -> 3, input rows 6 and 7 past 2 * 3
  { co: 16, ci: 16, k: 3, stride: 3, pad: 1, h: 10 }, // 10 -> 4
];

for (const c of SINGLE) {
  const label = `k${c.k} s${c.stride} p${c.pad} ${c.co}->${c.ci} at ${c.h}x${c.h} -> ${outOf(c)}x${outOf(c)}`;
  Deno.test(`phase form of a strided input gradient equals a float64 transposed convolution (${label})`, async () => {
    const rand = new Rng(c.k * 100 + c.stride * 10 + c.pad + c.h * 1000);
    const n = 2;
    const oh = outOf(c);
    const dy = random(n * c.co * oh * oh, rand);
    const w = random(c.co * c.ci * c.k * c.k, rand);
    const want = referenceInputGrad(dy, w, n, c);
    const feeds = {
      dy0: { data: dy, dims: [n, c.co, oh, oh] },
      w0: { data: w, dims: [c.co, c.ci, c.k, c.k] },
    };
    const fromInput = await run(phaseModel(n, [c], [w], true), feeds);
    const fromConstant = await run(phaseModel(n, [c], [w], false), { dy0: feeds.dy0 });
    // Sums of at most co * k * k / stride^2 products of values in [-1, 1]: float32 rounding.
    assert.ok(maxRelError(fromInput, want) < 1e-6, `weights as input: ${maxRelError(fromInput, want)}`);
    assert.deepEqual(fromConstant, fromInput);
    // The zero-inserted form, where it has padding for the geometry, agrees as well.
    const zeroInsert = zeroInsertModel(n, c, w);
    if (zeroInsert) assert.ok(maxRelError(await run(zeroInsert, { dy0: feeds.dy0 }), want) < 1e-6);
  });
}

Deno.test("phase form: a ResNet block's 3x3 and 1x1 strided gradients add up before one interleave", async () => {
  const rand = new Rng(7);
  const n = 2;
  const cases: Case[] = [
    { co: 32, ci: 16, k: 3, stride: 2, pad: 1, h: 16 },
    { co: 32, ci: 16, k: 1, stride: 2, pad: 0, h: 16 },
  ];
  const dys = cases.map((c) => random(n * c.co * outOf(c) ** 2, rand));
  const ws = cases.map((c) => random(c.co * c.ci * c.k * c.k, rand));
  const want = referenceInputGrad(dys[0], ws[0], n, cases[0]);
  referenceInputGrad(dys[1], ws[1], n, cases[1]).forEach((v, i) => want[i] += v);
  const model = phaseModel(n, cases, ws, true);
  const feeds = Object.fromEntries(cases.flatMap((c, i) => [
    [`dy${i}`, { data: dys[i], dims: [n, c.co, outOf(c), outOf(c)] }],
    [`w${i}`, { data: ws[i], dims: [c.co, c.ci, c.k, c.k] }],
  ]));
  assert.ok(maxRelError(await run(model, feeds), want) < 1e-6);
  // One Transpose for both: the second convolution adds onto the first's phases.
  const text = new TextDecoder("latin1").decode(model);
  assert.equal(text.split("Transpose").length - 1, 1);
});

// Extents that halve to odd sizes (14 -> 7 -> 4) had no NCHWc input gradient before the phase
// form (the zero-inserted form has no padding for 7 -> 4): the blocked engine must now agree with
// the plain NCHW one there, for the teacher's input gradient, an LRP oracle and a training step.
for (const [arch, h, w] of [["resnet8x4", 14, 14], ["wrn_16_2", 14, 10]] as const) {
  Deno.test(`NCHWc and NCHW onnxruntime engines agree on ${arch} at ${h}x${w} (strided 7 -> 4)`, async () => {
    const graph = buildModel(arch, { numClasses: 10 });
    const weights = nontrivialStateDict(graph, 11);
    const batch = randomBatch(3, 10, [3, h, w], 21);
    const [blocked, plain] = [
      new OnnxruntimeEngine({ layout: "nchwc" }),
      new OnnxruntimeEngine({ layout: "nchw" }),
    ];
    const frozen = await Promise.all([blocked.loadFrozen(graph, weights), plain.loadFrozen(graph, weights)]);
    const [gb, gp] = await Promise.all(frozen.map((f) => f.inputGradient(batch, "mean")));
    const scale = gp.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(
      maxAbsDiff(gb, gp) < 1e-5 * scale,
      `input gradient: ${maxAbsDiff(gb, gp) / scale} of its scale`,
    );
    // LRP's modified backward pass goes through the layouts' strided transposes as well.
    const opts: OracleOptions = {
      gamma: 0.5,
      recNum: 1,
      reduction: "mean",
      relevance: "lrp-epsilon",
      lrp: {},
    };
    const keep = { xStar: true, relevance: true };
    const [ob, op] = await Promise.all(frozen.map((f) => f.oracle(batch, opts, keep)));
    const rScale = op.relevance!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbsDiff(ob.relevance!, op.relevance!) < 1e-4 * rScale, "LRP relevance differs");
    assert.ok(maxAbsDiff(ob.xStar!, op.xStar!) < 1e-5, "LRP x* differs");
    frozen.forEach((f) => f.dispose());
    const sgd = { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 };
    const loss = { ceWeight: 1, alpha: 0, temperature: 4 };
    const students = [
      await blocked.loadTrainable(graph, weights, sgd),
      await plain.loadTrainable(graph, weights, sgd),
    ];
    for (const t of students) await t.trainStep(batch, null, loss, 0.05);
    const [sb, sp] = [await students[0].stateDict(), await students[1].stateDict()];
    for (const p of graph.params) {
      const d = maxAbsDiff(sb.get(p.name)!.data, sp.get(p.name)!.data);
      assert.ok(d < 1e-5, `${p.name} differs by ${d} after one step`);
    }
    students.forEach((t) => t.dispose());
  });
}

Deno.test("phaseGeometry: the phase kernel's taps and pads, and the geometries it declines", () => {
  assert.deepEqual(phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 3, stride: 2, pad: 1 }), {
    stride: 2,
    k: 3,
    pad: 1,
    taps: 2,
    first: 0,
    pads: [0, 0, 1, 1],
    grid: [16, 16],
    input: [32, 32],
  });
  assert.equal(phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 5, stride: 2, pad: 2 })?.taps, 3);
  assert.deepEqual(phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 5, stride: 2, pad: 2 })?.pads, [
    1,
    1,
    1,
    1,
  ]);
  // An input extent that is not a multiple of the stride: 4 x 4 phases, cut to 7 x 7 (rectangular
  // inputs take their own grid per axis).
  const odd = phaseGeometry({ h: 7, w: 12, oh: 4, ow: 6, k: 3, stride: 2, pad: 1 });
  assert.deepEqual([odd?.grid, odd?.input, odd?.pads], [[4, 6], [7, 12], [0, 0, 1, 1]]);
  // Declined: stride 1, and a window entirely on one side (negative padding).
  assert.equal(phaseGeometry({ h: 32, w: 32, oh: 32, ow: 32, k: 3, stride: 1, pad: 1 }), null);
  assert.equal(phaseGeometry({ h: 30, w: 30, oh: 15, ow: 15, k: 2, stride: 2, pad: 2 }), null);
});

Deno.test("gradAccumulator: a deferred gradient is made plain and summed when its value is taken", () => {
  const b = new OnnxBuilder("deferred");
  const grads = gradAccumulator(b, "y", "dy");
  grads.push("x", "plain_1");
  grads.pushDeferred("x", "phases:2", "p", (g) => b.op("Identity", [g]));
  assert.throws(() => grads.pushDeferred("x", "phases:2", "q", (g) => g), /already pending/);
  assert.equal(grads.takeDeferred("x", "phases:3"), null);
  const total = grads.take("x");
  assert.equal(b.nodeCount, 2); // Identity (the plain form), then Sum with plain_1
  assert.ok(total?.startsWith("sum"));
  assert.equal(grads.take("x"), null);
  assert.equal(grads.takeDeferred("x", "phases:2"), null);
});
