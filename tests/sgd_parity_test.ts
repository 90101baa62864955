/**
 * The student's training step equals PyTorch's: parameters and BatchNorm buffers after one and
 * two SGD steps (momentum, weight decay on every parameter, optional Nesterov) within 1e-5 max
 * abs of tests/fixtures/sgd_golden.json (tools/make_golden_distill.py).
 */
import assert from "node:assert/strict";
import { buildModel } from "../lib/models/zoo.ts";
import type { StateDict } from "../lib/tensor.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import { type Fixture, loadFixture } from "./fixtures.ts";
import { engineTest, PARITY_ENGINES } from "./engines.ts";
import { createEngine } from "../lib/engines/registry.ts";

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

for (const choice of PARITY_ENGINES) {
  for (const variant of ["plain", "nesterov"] as const) {
    const test = engineTest(`SGD distillation steps equal PyTorch (${choice.label}, ${variant})`, choice);
    Deno.test(test, async () => {
      const f = await loadFixture("sgd_golden.json");
      const m = f.meta as {
        classes: number;
        batch: number;
        lr: number;
        momentum: number;
        weight_decay: number;
        T: number;
        alpha: number;
        ce_weight: number;
      };
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
