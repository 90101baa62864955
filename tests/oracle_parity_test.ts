/**
 * Oracle inputs equal PyTorch's: for every engine under parity test, x* = x - gamma * |x| *
 * dCE(teacher(x), y)/dx (rec_num steps, mean or sum reduction) within 1e-5 max abs per sample,
 * and the teacher's logits on x* within 1e-4, against tests/fixtures/oracle_golden.json
 * (tools/make_golden_distill.py: the CIFAR-100 resnet56 teacher on 16 real test images).
 *
 * Both tolerances scale with the size of the sample's step, max(1, max |x* - x|): the float32
 * error of the gradient through 56 layers (~1e-6 relative, in PyTorch's golden as much as here)
 * lands in the step, which reaches 16 in the gamma 2 / sum case. As in the engine tests, one
 * sample per batch may sit on a ReLU kink (reported; it must agree to 1% of the values' scale).
 *
 * The teacher's weights come from `loadOracleTeacher` below. Until the .pth reader lands it
 * throws, and these tests are registered as ignored with the reason in their names.
 */
import assert from "node:assert/strict";
import { buildModel } from "../lib/models/zoo.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { decodeSafetensors } from "../lib/safetensors.ts";
import type { StateDict } from "../lib/tensor.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import { loadFixture } from "./fixtures.ts";
import { PARITY_ENGINES } from "./engines.ts";
import { sampleDiffs } from "./random_models.ts";

/** Thrown while no reader for the teacher checkpoint is available. */
class TeacherUnavailable extends Error {}

/**
 * The resnet56 CIFAR-100 teacher behind the fixture (../shared/teachers/cifar100/resnet56.pth).
 * When merging, point this at the .pth reader:
 * `return (await loadPth(new URL("../../shared/teachers/cifar100/resnet56.pth", import.meta.url))).stateDict;`
 * Meanwhile a safetensors copy can be named by ORACLE_TEACHER_SAFETENSORS.
 */
async function loadOracleTeacher(): Promise<StateDict> {
  const copy = Deno.env.get("ORACLE_TEACHER_SAFETENSORS");
  if (copy) return decodeSafetensors(await Deno.readFile(copy), copy).tensors;
  throw new TeacherUnavailable("needs convert/pth.ts");
}

let teacher: StateDict | null = null;
let unavailable = "";
try {
  teacher = await loadOracleTeacher();
} catch (e) {
  if (!(e instanceof TeacherUnavailable)) throw e;
  unavailable = e.message;
}

/** Per-sample tolerances; one sample may sit on a ReLU kink (see the module comment). */
function assertSamples(label: string, got: Float32Array, want: Float32Array, tols: number[]): void {
  const n = tols.length;
  const d = sampleDiffs(got, want, n, 0).perSample;
  const outside = d.flatMap((v, i) => (v > tols[i] ? [i] : []));
  const shown = d.map((v, i) => `${v.toExponential(1)}/${tols[i].toExponential(0)}`).join(" ");
  assert.ok(outside.length <= 1, `${label}: samples ${outside} outside tolerance (diff/tol: ${shown})`);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (const s of outside) {
    console.log(`  ${label}: sample ${s} differs by ${d[s].toExponential(2)} (ReLU kink allowance)`);
    assert.ok(d[s] < 0.01 * scale, `${label}: sample ${s} differs by ${d[s]}, beyond a kink`);
  }
}

interface OracleCase {
  name: string;
  gamma: number;
  rec_num: number;
  reduction: "mean" | "sum";
}

const fixture = await loadFixture("oracle_golden.json");
const cases = [
  ...(fixture.meta.cases as OracleCase[]).map((c) => ({ ...c, n: 16 })),
  // Batch dependence of the mean reduction: the first 8 samples alone.
  { name: "g0.5_r1_mean_first8", gamma: 0.5, rec_num: 1, reduction: "mean" as const, n: 8 },
];

for (const choice of PARITY_ENGINES) {
  const suffix = unavailable ? ` (ignored: ${unavailable})` : "";
  Deno.test({
    name: `oracle inputs and teacher logits equal PyTorch (${choice.label})${suffix}`,
    ignore: teacher === null,
    async fn() {
      const graph = buildModel("resnet56", { numClasses: 100 });
      const engine = await createEngine(choice);
      const model = await engine.loadFrozen(graph, teacher!);
      const x = fixture.tensors.get("x")!.data as Float32Array;
      const y = fixture.tensors.get("y")!.data as Int32Array;
      const per = 3 * 32 * 32;
      try {
        const plain = await model.forward({ x, n: 16, shape: [3, 32, 32] });
        const dPlain = maxAbsDiff(plain, fixture.tensors.get("logits_plain")!.data);
        assert.ok(dPlain <= 1e-4, `plain logits differ by ${dPlain}`);
        for (const c of cases) {
          const batch = { x: x.slice(0, c.n * per), y: y.slice(0, c.n), n: c.n, shape: [3, 32, 32] as const };
          const got = await model.oracle(
            batch,
            { gamma: c.gamma, recNum: c.rec_num, reduction: c.reduction },
            true,
          );
          const want = fixture.tensors.get(`xstar_${c.name}`)!.data as Float32Array;
          const steps = sampleDiffs(want, batch.x, c.n, 0).perSample.map((s) => Math.max(1, s));
          assertSamples(`${c.name} x*`, got.xStar!, want, steps.map((s) => 1e-5 * s));
          const logits = fixture.tensors.get(`logits_${c.name}`)!.data as Float32Array;
          assertSamples(`${c.name} logits`, got.logits, logits, steps.map((s) => 1e-4 * s));
        }
      } finally {
        model.dispose();
      }
    },
  });
}
