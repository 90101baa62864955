/**
 * The library route end to end, on tiny synthetic data (about a minute on a laptop CPU): load a
 * dataset, train a teacher, distill a student from its oracle with progress and per-epoch
 * callbacks, evaluate both (accuracy, NLL, ECE, MCE), export and re-evaluate the student as ONNX,
 * and draw a reliability diagram. Everything comes from `mod.ts`; from another project import
 * the same names from the package's URL instead of "../mod.ts".
 *
 * Run: `deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys examples/library.ts [out_dir]`
 * @module
 */
import {
  createEngine,
  distill,
  evaluateModel,
  evaluateNetwork,
  exportOnnx,
  loadDataset,
  loadTeacher,
  reliabilityFigure,
  train,
} from "../mod.ts";

const out = Deno.args[0] ?? await Deno.makeTempDir({ prefix: "oracle_kd_example_" });

// 1. Data: a named dataset (also a PNG folder path, or in-memory arrays with datasetFromArrays).
const dataset = await loadDataset("synthetic", {
  synthetic: { trainCount: 256, testCount: 64, shape: [3, 16, 16], numClasses: 4 },
});
const common = { epochs: 3, batchSize: 32, lr: 0.05, schedule: [3], engine: "onnxruntime" } as const;

// 2. A teacher trained from scratch with cross-entropy (or loadTeacher("resnet56", { dataset: "cifar100" })).
const teacherFile = `${out}/teacher.onnx`;
await train({ ...common, student: "resnet14", out: `${out}/teacher_run`, studentOut: teacherFile }, {
  dataset,
});

// 3. Distillation from the oracle teacher (x*), with callbacks; the history comes back.
const { summary, history } = await distill({
  ...common,
  teacher: teacherFile,
  student: "resnet8",
  gamma: 0.5,
  testTeacher: false,
  out: `${out}/distill_run`,
  studentOut: `${out}/student.onnx`,
}, {
  dataset,
  onProgress: (p) => {
    if (p.step === p.steps) {
      console.log(`${p.label}: ${p.step}/${p.steps} steps, loss ${Number(p.fields.loss).toFixed(3)}`);
    }
  },
  onEpoch: (r) =>
    console.log(`epoch ${r.epoch}: test top-1 ${r.test_top1.toFixed(1)}%, ECE ${r.test_ece.toFixed(1)}%`),
});
console.log(
  `distill ${summary.status}: ${history.length} epochs, best top-1 ${summary.best_test_acc.top1.toFixed(1)}%`,
);

// 4. Evaluation: any loaded network on a dataset, and an ONNX file with onnxruntime.
const teacher = await loadTeacher(teacherFile);
const engine = await createEngine({ engine: "onnxruntime" });
const net = await engine.loadFrozen(teacher.graph, teacher.weights);
const t = await evaluateNetwork(net, dataset);
net.dispose();
const s = await evaluateModel({ model: `${out}/student.onnx`, dataset });
console.log(
  `teacher top-1 ${t.top1.toFixed(1)}% NLL ${t.nll.toFixed(3)} ECE ${t.ece.toFixed(1)}% MCE ${
    t.mce.toFixed(1)
  }%`,
);
console.log(
  `student (ONNX) on ${s.dataset}: top-1 ${s.metrics.top1.toFixed(1)}% ECE ${s.metrics.ece.toFixed(1)}%`,
);

// 5. ONNX export of any graph and weights, and a figure.
await Deno.writeFile(
  `${out}/teacher_copy.onnx`,
  exportOnnx(teacher.graph, teacher.weights, { imageSize: 16 }),
);
await Deno.writeFile(
  `${out}/teacher_reliability.png`,
  await reliabilityFigure(t.bins, t.ece, "teacher on x"),
);
console.log(
  JSON.stringify({ out, epochs: history.length, teacherTop1: t.top1, studentImages: s.metrics.count }),
);
