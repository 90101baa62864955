import assert from "node:assert/strict";
import type { Graph } from "../lib/graph.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";
import { numel, type StateDict } from "../lib/tensor.ts";
import { CheckpointError, loadPth } from "../convert/pth.ts";
import { checkStateDictAgainst, fitZooModel, inferArchitecture } from "../convert/infer_arch.ts";
import { hasShared, SHARED_DIR } from "./test_utils.ts";

/** A state dict with the graph's keys and shapes (zeros: inference reads shapes only). */
function shapedStateDict(g: Graph): StateDict {
  const sd: StateDict = new Map();
  for (const p of g.params) {
    const n = numel(p.shape);
    sd.set(p.name, {
      dtype: p.dtype,
      shape: [...p.shape],
      data: p.dtype === "int64" ? new Float64Array(n) : new Float32Array(n),
    });
  }
  return sd;
}

function assertCheckpointError(fn: () => unknown, file: string, re: RegExp): string {
  let message = "";
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.ok(!e.message.includes("\n"));
    assert.match(e.message, re);
    message = e.message;
    return true;
  });
  return message;
}

const teacher = (name: string) => loadPth(new URL(`teachers/${name}.pth`, SHARED_DIR).pathname);

for (const [ds, classes] of [["cifar100", 100], ["cifar10", 10]] as const) {
  for (const [arch, blocks] of [["resnet20", 3], ["resnet32", 5], ["resnet56", 9]] as const) {
    Deno.test({
      name: `infer: shared ${ds}/${arch} is ${arch} with ${classes} classes`,
      ignore: !hasShared(),
      fn: async () => {
        const a = inferArchitecture((await teacher(`${ds}/${arch}`)).stateDict, `${arch}.pth`);
        assert.equal(a.arch, arch);
        assert.equal(a.family, "resnet");
        assert.equal(a.numClasses, classes);
        assert.equal(a.inChannels, 3);
        assert.equal(a.blocksPerStage, blocks);
        assert.equal(
          a.description,
          `${arch}: 3 stages x ${blocks} BasicBlocks, widths 16/16/32/64, 3 input channels, ${classes} classes`,
        );
      },
    });
  }
}

Deno.test("infer: every zoo architecture, and unnamed depths, round-trip", () => {
  const cases: [string, number, number][] = MODEL_NAMES.map((m) => [m, 100, 3]);
  cases.push(["resnet14", 10, 1], ["resnet26x4", 7, 3], ["wrn_28_4", 10, 1], ["wrn_10_1", 2, 3]);
  for (const [arch, numClasses, inChannels] of cases) {
    const g = buildModel(arch, { numClasses, inChannels });
    const a = inferArchitecture(shapedStateDict(g), `${arch}.pth`);
    assert.equal(a.arch, arch);
    assert.equal(a.numClasses, numClasses, arch);
    assert.equal(a.inChannels, inChannels, arch);
  }
  const wrn = inferArchitecture(shapedStateDict(buildModel("wrn_40_2", { numClasses: 100 })), "w.pth");
  assert.equal(
    wrn.description,
    "wrn_40_2: 3 stages x 6 pre-activation BasicBlocks, widths 16/32/64/128, 3 input channels, 100 classes",
  );
  assert.deepEqual([wrn.family, wrn.depth], ["wrn", 40]);
});

Deno.test({
  name: "check: a resnet20 state dict against resnet32 names the first missing tensor and its shape",
  ignore: !hasShared(),
  fn: async () => {
    const sd = (await teacher("cifar100/resnet20")).stateDict;
    const msg = assertCheckpointError(
      () => checkStateDictAgainst(buildModel("resnet32", { numClasses: 100 }), sd, "r20.pth"),
      "r20.pth",
      /does not fit resnet32 \(3 input channels, 100 classes\); first offending tensor layer1\.3\.conv1\.weight: missing from the file, resnet32 expects \[16, 16, 3, 3\]/,
    );
    assert.match(msg, /; 60 missing \(layer1\.3\.conv1\.weight, layer1\.3\.bn1\.weight, /);
    assert.match(msg, /the file looks like resnet20 with 100 classes and 3 input channels$/);
  },
});

Deno.test({
  name: "check: a resnet32 state dict against resnet20 lists the unexpected keys",
  ignore: !hasShared(),
  fn: async () => {
    const sd = (await teacher("cifar100/resnet32")).stateDict;
    assertCheckpointError(
      () => checkStateDictAgainst(buildModel("resnet20", { numClasses: 100 }), sd, "r32.pth"),
      "r32.pth",
      /first offending tensor layer1\.3\.conv1\.weight: not a tensor of resnet20, the file has \[16, 16, 3, 3\]; 72 unexpected \(layer1\.3\.conv1\.weight, /,
    );
  },
});

Deno.test({
  name: "check: a 10-class resnet20 against a 100-class one names fc.weight and both shapes",
  ignore: !hasShared(),
  fn: async () => {
    const sd = (await teacher("cifar10/resnet20")).stateDict;
    assertCheckpointError(
      () => checkStateDictAgainst(buildModel("resnet20", { numClasses: 100 }), sd, "c10.pth"),
      "c10.pth",
      /first offending tensor fc\.weight: the file has \[10, 64\], resnet20 expects \[100, 64\]; 2 with another shape;/,
    );
  },
});

Deno.test("check: resnet8x4 against resnet8 names conv1.weight with both shapes", () => {
  const sd = shapedStateDict(buildModel("resnet8x4", { numClasses: 10 }));
  assertCheckpointError(
    () => checkStateDictAgainst(buildModel("resnet8", { numClasses: 10 }), sd, "x4.pth"),
    "x4.pth",
    /first offending tensor conv1\.weight: the file has \[32, 3, 3, 3\], resnet8 expects \[16, 3, 3, 3\]/,
  );
});

Deno.test("check: strict result in graph order; dtypes follow the graph; old BN gets num_batches_tracked", () => {
  const g = buildModel("resnet8", { numClasses: 10 });
  const full = shapedStateDict(g);
  // Reverse the order, store one int64 buffer as float32, and drop every num_batches_tracked.
  const sd: StateDict = new Map([...full].reverse().filter(([k]) => !k.endsWith("num_batches_tracked")));
  sd.set("bn1.num_batches_tracked", { dtype: "float32", shape: [], data: new Float32Array([5]) });
  sd.get("fc.weight")!.data[0] = 0.25;
  const strict = checkStateDictAgainst(g, sd, "old.pth");
  assert.deepEqual([...strict.keys()], g.params.map((p) => p.name));
  assert.deepEqual(g.params.map((p) => strict.get(p.name)!.dtype), g.params.map((p) => p.dtype));
  assert.equal(strict.get("bn1.num_batches_tracked")!.data[0], 5);
  assert.ok(strict.get("bn1.num_batches_tracked")!.data instanceof Float64Array);
  assert.equal(strict.get("layer1.0.bn1.num_batches_tracked")!.data[0], 0);
  // Arrays are shared, not copied.
  assert.equal(strict.get("fc.weight")!.data, sd.get("fc.weight")!.data);
});

Deno.test("infer: unknown layouts say what was found", () => {
  const base = shapedStateDict(buildModel("resnet8", { numClasses: 10 }));
  const edit = (f: (sd: StateDict) => void) => {
    const sd = new Map(base);
    f(sd);
    return sd;
  };
  const t = (shape: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(numel(shape)) });
  const cases: [StateDict, RegExp][] = [
    [new Map(), /the state dict is empty/],
    [
      new Map([["features.0.weight", t([64, 3, 3, 3])]]),
      /unknown layout: expected conv1\.weight .*found keys features\.0\.weight/,
    ],
    [
      edit((sd) => sd.set("layer4.0.conv1.weight", t([512, 256, 3, 3]))),
      /ImageNet-style ResNet \(it has layer4\)/,
    ],
    [edit((sd) => sd.set("layer1.0.conv3.weight", t([64, 16, 1, 1]))), /Bottleneck blocks/],
    [
      edit((sd) => sd.set("layer3.1.conv1.weight", t([64, 64, 3, 3]))),
      /a ResNet with 1\/1\/2 blocks per stage/,
    ],
    [
      edit((sd) => {
        for (const k of [...sd.keys()]) if (k.includes("downsample")) sd.delete(k);
        sd.set("linear.weight", sd.get("fc.weight")!);
        sd.delete("fc.weight");
      }),
      /no classifier fc\.weight \(found linear\.weight; the zoo names it fc\)/,
    ],
    [
      edit((sd) => {
        for (const k of [...sd.keys()]) if (k.includes("downsample")) sd.delete(k);
      }),
      /layer2\.0 has a shortcut without parameters \(option-A zero-padding shortcuts/,
    ],
    [
      edit((sd) => sd.set("conv1.weight", t([24, 3, 3, 3]))),
      /widths 24\/16\/32\/64; the zoo has 16\/16\/32\/64/,
    ],
  ];
  for (const [sd, re] of cases) assertCheckpointError(() => inferArchitecture(sd, "odd.pth"), "odd.pth", re);
  const wrn = shapedStateDict(buildModel("wrn_16_2", { numClasses: 10 }));
  wrn.set("block3.layer.0.conv1.weight", t([96, 64, 3, 3]));
  assertCheckpointError(
    () => inferArchitecture(wrn, "w.pth"),
    "w.pth",
    /Wide ResNet with widths 16\/32\/64\/96/,
  );
  // Keys right, but one tensor of the wrong shape: the full check names it.
  const bad = edit((sd) => sd.set("layer1.0.bn2.running_var", t([15])));
  assertCheckpointError(
    () => inferArchitecture(bad, "bn.pth"),
    "bn.pth",
    /first offending tensor layer1\.0\.bn2\.running_var: the file has \[15\], resnet8 expects \[16\]/,
  );
});

Deno.test("fit: inferred or explicit zoo model for a state dict", () => {
  const sd = shapedStateDict(buildModel("wrn_16_1", { numClasses: 10, inChannels: 1 }));
  const inferred = fitZooModel(sd, "f.pth");
  assert.equal(inferred.graph.arch, "wrn_16_1");
  assert.equal(inferred.graph.inChannels, 1);
  assert.match(inferred.description, /^wrn_16_1: 3 stages x 2 pre-activation BasicBlocks/);
  const explicit = fitZooModel(sd, "f.pth", { arch: "wrn_16_1" });
  assert.equal(explicit.stateDict.size, inferred.graph.params.length);
  assertCheckpointError(
    () => fitZooModel(sd, "f.pth", { numClasses: 100 }),
    "f.pth",
    /has 10 classes \(wrn_16_1\), 100 were asked for/,
  );
  assertCheckpointError(
    () => fitZooModel(sd, "f.pth", { arch: "vgg13" }),
    "f.pth",
    /unknown architecture "vgg13"/,
  );
  assertCheckpointError(
    () => fitZooModel(sd, "f.pth", { arch: "wrn_16_2" }),
    "f.pth",
    /does not fit wrn_16_2 .*the file looks like wrn_16_1 with 10 classes and 1 input channels/,
  );
});
