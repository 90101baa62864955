import assert from "node:assert/strict";
import { loadSweepSpec, parseOverrides, parseSweepSpec, SweepSpecError } from "../app/sweep/spec.ts";
import { planSweep } from "../app/sweep/plan.ts";

const base = {
  settings: { data: "synthetic", epochs: 2 },
  pairs: [{ teacher: "t56.onnx", student: "resnet20" }, { teacher: "t110.onnx", student: "resnet20" }],
  methods: ["train", "plain", "oracle"],
  axes: { seed: [0, 1, 2], gamma: [0.5, 1] },
};

Deno.test("sweep spec: axes cross, methods drop settings they do not use, CE baselines are shared", () => {
  const plan = planSweep(parseSweepSpec(base, "s.yaml"), "/tmp/sw");
  // per seed: 1 CE (shared by both teachers) + 2 pairs x (1 plain + 2 oracle gammas) = 7
  assert.equal(plan.cells.length, 21);
  const names = plan.cells.map((c) => c.name);
  assert.equal(new Set(names).size, names.length);
  assert.ok(names.includes("train_resnet20_seed=0"));
  assert.ok(names.includes("plain_t56-resnet20_seed=2"));
  assert.ok(names.includes("oracle_t110-resnet20_gamma=1_seed=1"));
  assert.ok(!names.some((n) => n.startsWith("plain") && n.includes("gamma")));
  assert.deepEqual(plan.columnKeys, ["gamma"]);
  assert.deepEqual(plan.rowKeys, []);
  const o = plan.cells.find((c) => c.name === "oracle_t110-resnet20_gamma=1_seed=1")!;
  assert.equal(o.config.gamma, 1);
  assert.equal(o.config.seed, 1);
  assert.equal(o.config.response, "oracle");
  assert.equal(o.config.teacher, "t110.onnx");
  assert.equal(o.config.epochs, 2);
  assert.equal(o.config.out, "/tmp/sw/cells/oracle_t110-resnet20_gamma=1_seed=1");
  assert.equal(o.config.studentOut, "/tmp/sw/cells/oracle_t110-resnet20_gamma=1_seed=1/student.onnx");
  const t = plan.cells.find((c) => c.name === "train_resnet20_seed=0")!;
  assert.equal(t.command, "train");
  assert.equal(t.config.ceWeight, 1);
  assert.equal(t.config.alpha, 0);
  assert.equal(plan.cells.find((c) => c.name === "plain_t56-resnet20_seed=0")!.config.response, "plain");
  // the teacher's test runs once per teacher and oracle setting (seed 0), not for every seed
  const tests = plan.cells.filter((c) => c.config.testTeacher && c.method !== "train").map((c) => c.name);
  assert.deepEqual(tests, [
    "plain_t56-resnet20_seed=0",
    "oracle_t56-resnet20_gamma=0.5_seed=0",
    "oracle_t56-resnet20_gamma=1_seed=0",
    "plain_t110-resnet20_seed=0",
    "oracle_t110-resnet20_gamma=0.5_seed=0",
    "oracle_t110-resnet20_gamma=1_seed=0",
  ]);
  // seeds outermost: every method of seed 0 comes before seed 1
  assert.ok(plan.cells.slice(0, 7).every((c) => c.seed === 0));
  assert.deepEqual(plan.cells.map((c) => c.index), plan.cells.map((_, i) => i));
});

Deno.test("sweep spec: teachers trained by the sweep come first and feed their cells", () => {
  const plan = planSweep(
    parseSweepSpec({
      settings: { data: "synthetic", epochs: 1 },
      teachers: { t20: { student: "resnet20", epochs: 3, seed: 7 } },
      pairs: [{ teacher: "@t20", student: "resnet8" }],
      methods: ["plain"],
      axes: { seed: [0, 1] },
    }, "s.yaml"),
    "/tmp/sw",
  );
  assert.deepEqual(plan.cells.map((c) => c.name), [
    "teacher_t20",
    "plain_t20-resnet8_seed=0",
    "plain_t20-resnet8_seed=1",
  ]);
  assert.equal(plan.cells[0].config.epochs, 3);
  assert.equal(plan.cells[0].config.seed, 7);
  assert.equal(plan.cells[0].command, "train");
  assert.equal(plan.cells[1].config.teacher, "/tmp/sw/cells/teacher_t20/student.onnx");
  assert.deepEqual(plan.cells[1].dependsOn, ["teacher_t20"]);
});

Deno.test("sweep spec: --set overrides settings, teachers and axes", () => {
  const plan = planSweep(
    parseSweepSpec(
      { ...base, teachers: { t: { student: "resnet8", epochs: 9 } }, axes: { seed: [0, 1], epochs: [3, 4] } },
      "s.yaml",
      parseOverrides(["epochs=1", "subset=50"]),
    ),
    "/tmp/sw",
  );
  assert.ok(plan.cells.every((c) => c.config.epochs === 1 && c.config.subset === 50));
  assert.ok(!plan.cells.some((c) => c.name.includes("epochs")));
  assert.throws(() => parseOverrides(["epochs"]), /--set epochs: expected key=value/);
  assert.throws(
    () => parseSweepSpec(base, "s.yaml", { epoch: "1" }),
    /s\.yaml: --set: unknown setting "epoch"/,
  );
});

Deno.test("sweep spec: bad specs are refused with the file named", () => {
  const bad: [unknown, RegExp][] = [
    [{ ...base, settings: { epochs: 0 } }, /^s\.yaml: settings: --epochs must be >= 1, got 0/],
    [{ ...base, settings: { lerning_rate: 1 } }, /^s\.yaml: settings: unknown setting "lerning_rate"/],
    [{ ...base, axes: { gamma: [0.5, -1] } }, /^s\.yaml: axes\.gamma: --gamma must be >= 0, got -1/],
    [{ ...base, axes: { temperature: 2 } }, /^s\.yaml: axes\.temperature must be a non-empty list/],
    [{ ...base, axes: { seed: [1, 1] } }, /axes\.seed lists a value twice/],
    [{ ...base, methods: ["kd"] }, /^s\.yaml: methods: "kd" is not one of train, plain, oracle/],
    [{ ...base, settings: { response: "plain" } }, /"response" is chosen by methods/],
    [{ ...base, settings: { out: "x" } }, /"out" is set by the sweep/],
    [{ ...base, pairs: [{ teacher: "@nope", student: "resnet8" }] }, /teacher @nope is not defined/],
    [{ ...base, pairs: [{ teacher: "a.onnx" }] }, /pairs\[0\] needs a student/],
    [
      { ...base, pairs: [{ teacher: "a.onnx", student: "resnet8", lr: "fast" }] },
      /pairs\[0\]: --lr must be a number/,
    ],
    [{ ...base, grid: {} }, /unknown key "grid"/],
    [{ ...base, teachers: { t: { epochs: 1 } } }, /teachers\.t needs student/],
    [{ settings: { data: "synthetic" }, methods: ["oracle"] }, /no teacher/],
    [[1, 2], /must be a mapping/],
  ];
  for (const [spec, re] of bad) {
    assert.throws(
      () => parseSweepSpec(spec, "s.yaml"),
      (e: Error) => e instanceof SweepSpecError && re.test(e.message),
    );
  }
});

Deno.test("sweep spec: a teacher trained on other data is refused", () => {
  const spec = parseSweepSpec({
    settings: { data: "synthetic" },
    teachers: { t: { student: "resnet8", data: "cifar10" } },
    pairs: [{ teacher: "@t", student: "resnet8" }],
  }, "s.yaml");
  assert.throws(
    () => planSweep(spec, "/tmp/x"),
    /teacher @t is trained on cifar10 but cell plain_t-resnet8 uses synthetic/,
  );
});

Deno.test("sweep spec: pairs that differ only in extra settings get distinct names", () => {
  const plan = planSweep(
    parseSweepSpec({
      settings: { data: "synthetic" },
      pairs: [{ teacher: "a.onnx", student: "resnet8", lr: 0.1 }, {
        teacher: "a.onnx",
        student: "resnet8",
        lr: 0.01,
      }],
      methods: ["oracle"],
    }, "s.yaml"),
    "/tmp/x",
  );
  assert.equal(plan.cells.length, 2);
  assert.notEqual(plan.cells[0].name, plan.cells[1].name);
  assert.deepEqual(plan.cells.map((c) => c.config.lr).sort(), [0.01, 0.1]);
});

Deno.test("sweep spec: YAML and JSON files load; unreadable and malformed files name the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/a.yaml`,
      "name: study\nsettings:\n  data: synthetic\n  batch-size: 32\npairs:\n  - {teacher: t.onnx, student: resnet8}\naxes:\n  seed: [0, 1]\n",
    );
    const y = await loadSweepSpec(`${dir}/a.yaml`);
    assert.equal(y.name, "study");
    assert.equal(y.settings.batchSize, 32);
    await Deno.writeTextFile(`${dir}/b.json`, JSON.stringify(base));
    const j = await loadSweepSpec(`${dir}/b.json`);
    assert.equal(j.name, "b");
    assert.deepEqual(j.axes.gamma, [0.5, 1]);
    await Deno.writeTextFile(`${dir}/c.yaml`, "settings: [unclosed\n");
    await assert.rejects(
      loadSweepSpec(`${dir}/c.yaml`),
      new RegExp(`^SweepSpecError: ${dir}/c\\.yaml: not valid YAML`),
    );
    await assert.rejects(loadSweepSpec(`${dir}/none.yaml`), /none\.yaml: cannot read the spec/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep spec: the shipped studies load and expand", async () => {
  const paper = planSweep(await loadSweepSpec("examples/sweeps/paper_cifar100.yaml"), "/tmp/p");
  assert.ok(paper.cells.every((c) => c.config.data === "cifar100" && c.config.epochs === 240));
  for (const pair of ["resnet56-resnet20", "resnet110-resnet20", "resnet110-resnet32", "resnet20-resnet20"]) {
    assert.ok(paper.cells.some((c) => c.name === `oracle_${pair}_seed=0`), pair);
    assert.ok(paper.cells.some((c) => c.name === `plain_${pair}_seed=0`), pair);
  }
  const small = planSweep(await loadSweepSpec("examples/sweeps/fashion_mnist_small.yaml"), "/tmp/f");
  assert.equal(small.cells[0].kind, "teacher");
  for (const m of ["train", "plain", "oracle"]) {
    assert.equal(small.cells.filter((c) => c.method === m && c.kind === "cell").length, 3, m);
  }
  assert.ok(small.cells.every((c) => c.config.data === "fashion-mnist"));
});
