/**
 * The student's training step equals PyTorch's: parameters and BatchNorm buffers after one and
 * two SGD steps (momentum, weight decay on every parameter, optional Nesterov) within 1e-5 max
 * abs of tests/fixtures/sgd_golden.json (tools/make_golden_distill.py); and, on real images with
 * the paper's teacher, within 10x of PyTorch float32's own distance from float64 (below).
 */
import assert from "node:assert/strict";
import { buildModel } from "../lib/models/zoo.ts";
import type { StateDict } from "../lib/tensor.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import { type Fixture, loadFixture } from "./fixtures.ts";
import { engineTest, PARITY_ENGINES } from "./engines.ts";
import { createEngine } from "../lib/engines/registry.ts";
import type { Engine, GradReduction } from "../lib/engines/engine.ts";
import { OnnxruntimeEngine } from "../lib/engines/onnxruntime/engine.ts";
import { nchwcBlockSize } from "../lib/engines/onnxruntime/nchwc.ts";
import { checkStateDictAgainst } from "../convert/infer_arch.ts";
import { loadPth } from "../convert/pth.ts";
import { SHARED_DIR, sharedTest } from "./test_utils.ts";

const TOL = 1e-5;

function stateFromFixture(f: Fixture, prefix: string, keys: string[]): StateDict {
  const sd: StateDict = new Map();
  for (const k of keys) {
    const t = f.tensors.get(`${prefix}.${k}`);
    assert.ok(t, `fixture lacks ${prefix}.${k}`);
    const dtype = t.dtype === "int64" ? "int64" : "float32";
    sd.set(k, {
      dtype,
      shape: t.shape,
      data: dtype === "int64" ? Float64Array.from(t.data) : Float32Array.from(t.data),
    });
  }
  return sd;
}

/** The SGD and loss settings a golden file was made with (tools/make_golden_distill.py). */
type SgdMeta = {
  classes: number;
  batch: number;
  lr: number;
  momentum: number;
  weight_decay: number;
  T: number;
  alpha: number;
  ce_weight: number;
};

for (const choice of PARITY_ENGINES) {
  for (const variant of ["plain", "nesterov"] as const) {
    const test = engineTest(`SGD distillation steps equal PyTorch (${choice.label}, ${variant})`, choice);
    Deno.test(test, async () => {
      const f = await loadFixture("sgd_golden.json");
      const m = f.meta as SgdMeta;
      const graph = buildModel("resnet8", { numClasses: m.classes });
      const keys = graph.params.map((p) => p.name);
      const engine = await createEngine(choice);
      const student = await engine.loadTrainable(graph, stateFromFixture(f, "init", keys), {
        momentum: m.momentum,
        weightDecay: m.weight_decay,
        nesterov: variant === "nesterov",
        dampening: 0,
      });
      try {
        for (const step of [1, 2]) {
          const x = f.tensors.get(`x${step}`)!.data as Float32Array;
          const y = f.tensors.get(`y${step}`)!.data as Int32Array;
          const t = f.tensors.get(`t${step}`)!.data as Float32Array;
          const stats = await student.trainStep(
            { x, y, n: m.batch, shape: [3, 32, 32] },
            t,
            { ceWeight: m.ce_weight, alpha: m.alpha, temperature: m.T },
            m.lr,
          );
          const [loss, ce, kd] = f.tensors.get(`${variant}.loss${step}`)!.data;
          assert.ok(Math.abs(stats.loss - loss) < 1e-5, `step ${step} loss ${stats.loss} vs ${loss}`);
          assert.ok(Math.abs(stats.ce - ce) < 1e-5, `step ${step} ce ${stats.ce} vs ${ce}`);
          assert.ok(Math.abs(stats.kd - kd) < 1e-5, `step ${step} kd ${stats.kd} vs ${kd}`);
          const want = stateFromFixture(f, `${variant}.step${step}`, keys);
          const got = await student.stateDict();
          for (const k of keys) {
            const d = maxAbsDiff(got.get(k)!.data, want.get(k)!.data);
            assert.ok(d <= TOL, `step ${step}: ${k} differs from PyTorch by ${d} (tolerance ${TOL})`);
          }
        }
      } finally {
        student.dispose();
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Real images, the paper's teacher: two oracle-KD steps of a resnet20 student on 20 real CIFAR-100
// test images with the paper's CIFAR-100 resnet56 teacher (tests/fixtures/sgd_real_golden.{json,bin},
// tools/make_golden_distill.py). PyTorch in float64 is the reference, PyTorch's own float32
// distance from it (max abs per tensor) the yardstick; the engine computes the teacher's oracle
// itself, as PyTorch's runs did. The student's BatchNorm momentum is 1, so its running statistics
// after a step are that step's batch statistics.
//
// - After step 1, every running mean and variance (the forward pass's statistics, untouched by
//   ReLU kinks: the forward pass is continuous) lies within REAL_FACTOR times PyTorch float32's
//   distance (its default NCHW format, which sums BatchNorm statistics in double). A forward
//   pass computed less accurately than PyTorch's fails here.
// - After step 2, every parameter and buffer lies within REAL_FACTOR times the larger distance of
//   PyTorch's two float32 memory formats (NCHW, channels_last). One ReLU input of this batch sits
//   within float32 rounding of its kink (layer3.2's block output, float64 +3.0e-6, errors of
//   +-3e-6 there), and the side float32 takes is a toss of summation order that moves the whole
//   state after it by 1e-4..1e-3: PyTorch NCHW keeps float64's side, PyTorch channels_last does
//   not. An engine as accurate as PyTorch may land either way.

const REAL_FACTOR = 10;

interface RealMeta extends SgdMeta {
  gamma: number;
  rec_num: number;
  reduction: GradReduction;
  f32_vs_f64: { step1: Record<string, number>; step2: Record<string, number> };
  f32_vs_f64_nchw: { step1: Record<string, number>; step2: Record<string, number> };
  bn_momentum: number;
  raw: Record<string, [number, number[]]>;
}

/** The real-image fixture: meta, small tensors and the raw float32 sidecar. */
async function loadRealFixture(): Promise<{ f: Fixture; meta: RealMeta; raw: Float32Array }> {
  const f = await loadFixture("sgd_real_golden.json");
  const bytes = await Deno.readFile(new URL("./fixtures/sgd_real_golden.bin", import.meta.url));
  const raw = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return { f, meta: f.meta as unknown as RealMeta, raw };
}

function rawTensor(meta: RealMeta, raw: Float32Array, name: string): Float32Array {
  const entry = meta.raw[name];
  assert.ok(entry, `sgd_real_golden.bin lacks ${name}`);
  const [offset, shape] = entry;
  return raw.subarray(offset, offset + shape.reduce((a, b) => a * b, 1));
}

/**
 * Engines of the real-image case: PARITY_ENGINES, with onnxruntime in both of its layouts. The
 * pure-JS tfjs-cpu reference takes about 5 minutes here (2 cores, quiet machine; over 30 under a
 * load of 15).
 */
interface RealEngine {
  label: string;
  create: () => Promise<Engine>;
  /** Why the case is not run here (no adapter, or too slow for every CI run). */
  ignore?: string;
}

/**
 * The pure-JS reference takes about 5 minutes for this case on 2 cores (4m58s measured; the
 * webgpu engine on llvmpipe takes 25 s and runs always): opt in to run it.
 */
const SLOW = Deno.env.get("ORACLE_KD_SLOW_TESTS") === "1";
const slowReason = (label: string) =>
  label.startsWith("tfjs-cpu")
    ? "about 5 minutes on 2 cores: set ORACLE_KD_SLOW_TESTS=1 to run it"
    : undefined;

const REAL_ENGINES: RealEngine[] = PARITY_ENGINES
  .flatMap((c): RealEngine[] =>
    c.engine === "onnxruntime"
      ? (["nchwc", "nchw"] as const).map((layout) => ({
        label: `${c.label} ${layout}`,
        create: async (): Promise<Engine> => {
          if (layout === "nchwc" && (await nchwcBlockSize()) === 0) {
            throw new Error("this onnxruntime build has no NCHWc kernels");
          }
          return new OnnxruntimeEngine({ layout, threads: c.threads });
        },
      }))
      : [{
        label: c.label,
        create: () => createEngine(c),
        ignore: c.ignore ?? (SLOW ? undefined : slowReason(c.label)),
      }]
  );

for (const { label, create, ignore } of REAL_ENGINES) {
  sharedTest(
    `two oracle-KD steps on real CIFAR-100 images, resnet56 -> resnet20, stay within ${REAL_FACTOR}x of PyTorch float32's distance from float64 (${label})`,
    async () => {
      const { f, meta, raw } = await loadRealFixture();
      const teacherFile = new URL("teachers/cifar100/resnet56.pth", SHARED_DIR);
      const teacherGraph = buildModel("resnet56", { numClasses: meta.classes });
      const teacherWeights = checkStateDictAgainst(
        teacherGraph,
        (await loadPth(teacherFile)).stateDict,
        teacherFile.pathname,
      );
      const graph = buildModel("resnet20", { numClasses: meta.classes });
      for (const node of graph.nodes) if (node.op === "batchnorm") node.momentum = meta.bn_momentum;
      const init: StateDict = new Map();
      for (const p of graph.params) {
        init.set(
          p.name,
          p.dtype === "int64" ? { dtype: "int64", shape: p.shape, data: new Float64Array(1) } : {
            dtype: "float32",
            shape: p.shape,
            data: Float32Array.from(rawTensor(meta, raw, `init.${p.name}`)),
          },
        );
      }
      const engine = await create();
      const teacher = await engine.loadFrozen(teacherGraph, teacherWeights);
      const student = await engine.loadTrainable(graph, init, {
        momentum: meta.momentum,
        weightDecay: meta.weight_decay,
        nesterov: false,
        dampening: 0,
      });
      try {
        const batch = {
          x: f.tensors.get("x")!.data as Float32Array,
          y: f.tensors.get("y")!.data as Int32Array,
          n: meta.batch,
          shape: [3, 32, 32] as const,
        };
        const beyond = (d: number, yardstick: number) => !(d <= REAL_FACTOR * yardstick);
        for (const step of [1, 2]) {
          const { logits } = await teacher.oracle(batch, {
            gamma: meta.gamma,
            recNum: meta.rec_num,
            reduction: meta.reduction,
          });
          await student.trainStep(
            batch,
            logits,
            { ceWeight: meta.ce_weight, alpha: meta.alpha, temperature: meta.T },
            meta.lr,
          );
          if (step !== 1) continue;
          const stats = await student.stateDict();
          const off: string[] = [];
          let worstStats = 0;
          for (const p of graph.params) {
            if (!p.name.includes("running_")) continue;
            const hi = f.tensors.get(`f64_step1_hi.${p.name}`)!.data;
            const lo = f.tensors.get(`f64_step1_lo.${p.name}`)!.data;
            const g = stats.get(p.name)!.data;
            let d = 0;
            for (let i = 0; i < g.length; i++) d = Math.max(d, Math.abs(g[i] - (hi[i] + lo[i])));
            const yardstick = meta.f32_vs_f64_nchw.step1[p.name];
            worstStats = Math.max(worstStats, d / yardstick);
            if (beyond(d, yardstick)) {
              off.push(
                `${p.name} ${d.toExponential(2)} (${(d / yardstick).toFixed(0)}x ${
                  yardstick.toExponential(2)
                })`,
              );
            }
          }
          console.log(
            `  ${label}: step 1 batch statistics, worst at ${
              worstStats.toFixed(2)
            }x PyTorch float32's distance`,
          );
          assert.equal(
            off.length,
            0,
            `step 1: ${off.length} BatchNorm batch statistics lie beyond ${REAL_FACTOR}x PyTorch float32's distance from float64: ${
              off.join(", ")
            }`,
          );
        }
        const got = await student.stateDict();
        const report: string[] = [];
        let worst = 0;
        for (const p of graph.params) {
          const g = got.get(p.name)!.data;
          if (p.dtype === "int64") {
            assert.equal(g[0], 2, `${p.name}: ${g[0]} steps counted`);
            continue;
          }
          const init0 = rawTensor(meta, raw, `init.${p.name}`);
          const delta = rawTensor(meta, raw, `f64_step2_delta.${p.name}`);
          let d = 0;
          for (let i = 0; i < g.length; i++) d = Math.max(d, Math.abs(g[i] - (init0[i] + delta[i])));
          const yardstick = meta.f32_vs_f64.step2[p.name];
          const ratio = d / yardstick;
          worst = Math.max(worst, ratio);
          if (beyond(d, yardstick)) {
            report.push(
              `${p.name} ${d.toExponential(2)} (${ratio.toFixed(0)}x ${yardstick.toExponential(2)})`,
            );
          }
        }
        console.log(
          `  ${label}: worst tensor at ${worst.toFixed(2)}x PyTorch float32's distance from float64`,
        );
        assert.equal(
          report.length,
          0,
          `after two steps ${report.length} tensors lie beyond ${REAL_FACTOR}x PyTorch float32's distance from float64: ${
            report.join(", ")
          }`,
        );
      } finally {
        student.dispose();
        teacher.dispose();
      }
    },
    ignore,
  );
}
