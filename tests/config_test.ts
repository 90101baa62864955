import assert from "node:assert/strict";
import { ConfigError, DISTILL_DEFAULTS, DISTILL_FIELDS, learningRate, resolveConfig } from "../lib/config.ts";

Deno.test("defaults are the paper's published resnet56 -> resnet20 CIFAR-100 run", () => {
  const c = resolveConfig();
  assert.equal(c.data, "cifar100");
  assert.equal(c.teacher, "resnet56");
  assert.equal(c.student, "resnet20");
  assert.deepEqual(
    [
      c.temperature,
      c.gamma,
      c.ceWeight,
      c.alpha,
      c.lr,
      c.momentum,
      c.weightDecay,
      c.batchSize,
      c.epochs,
      c.recNum,
    ],
    [2, 0.5, 0.5, 1, 0.05, 0.9, 2.5e-4, 64, 240, 1],
  );
  assert.deepEqual(c.schedule, [150, 180, 210]);
  for (const k of Object.keys(DISTILL_DEFAULTS)) assert.ok(k in DISTILL_FIELDS, `${k} has no field spec`);
  for (const [k, spec] of Object.entries(DISTILL_FIELDS)) {
    assert.ok(spec.doc.length > 5, `${k} lacks a doc line`);
  }
});

Deno.test("layers merge in order, kebab-case keys accepted, values parsed", () => {
  const c = resolveConfig({ epochs: 10, "batch-size": 32 }, {
    epochs: "3",
    schedule: "2,3",
    nesterov: "true",
  });
  assert.equal(c.epochs, 3);
  assert.equal(c.batchSize, 32);
  assert.deepEqual(c.schedule, [2, 3]);
  assert.equal(c.nesterov, true);
});

Deno.test("validation errors name the flag and the allowed values", () => {
  assert.throws(() => resolveConfig({ reduction: "max" }), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, '--reduction must be one of mean, sum; got "max"');
    return true;
  });
  assert.throws(() => resolveConfig({ "rec-num": "0" }), /--rec-num must be >= 1, got 0/);
  assert.throws(() => resolveConfig({ epochs: "2.5" }), /--epochs must be an integer/);
  assert.throws(() => resolveConfig({ temperature: "0" }), /--temperature must be > 0/);
  assert.throws(() => resolveConfig({ lr: "fast" }), /--lr must be a number, got "fast"/);
  assert.throws(() => resolveConfig({ bogus: 1 }), /unknown setting "bogus"; known settings: data, data-dir/);
});

Deno.test("learning-rate schedules: multistep as the paper's code, cosine", () => {
  const c = resolveConfig();
  assert.equal(learningRate(c, 1), 0.05);
  assert.equal(learningRate(c, 149), 0.05);
  assert.ok(Math.abs(learningRate(c, 150) - 0.005) < 1e-12);
  assert.ok(Math.abs(learningRate(c, 180) - 0.0005) < 1e-12);
  assert.ok(Math.abs(learningRate(c, 240) - 0.00005) < 1e-12);
  const cos = resolveConfig({ lrSchedule: "cosine", epochs: 4 });
  assert.equal(learningRate(cos, 1), 0.05);
  assert.ok(Math.abs(learningRate(cos, 3) - 0.025) < 1e-12);
});

// ---------------------------------------------------------------------------------------------
// One config mechanism for every command (issue 11 item 4).

import { parseFlags } from "../lib/cli_args.ts";
import {
  archProblem,
  checkRequired,
  COMMANDS,
  type DistillConfig,
  fieldName,
  type FieldSpec,
  GROUPS,
  nearest,
  parseValue,
  resolveFields,
  TEST_FIELDS,
  TRAIN_FIELDS,
  trainAsDistill,
} from "../lib/config.ts";
import { parseSettings } from "../lib/config_file.ts";
import { ENGINE_NAMES } from "../lib/engines/registry.ts";
import { TFJS_BACKENDS } from "../lib/engines/tfjs/backend.ts";
import { RELEVANCE_RULES } from "../lib/oracle/options.ts";

Deno.test("every command's fields: a doc, a help group, and a default that passes its own checks", () => {
  for (const [name, cmd] of Object.entries(COMMANDS)) {
    assert.ok(cmd.example.startsWith(`deno task ${name}`), `${name}: example`);
    const c = resolveFields(cmd.fields) as Record<string, unknown>;
    for (const [k, spec] of Object.entries(cmd.fields)) {
      assert.ok(spec.doc.length > 5, `${name} --${k} lacks a doc line`);
      assert.ok((GROUPS as readonly string[]).includes(spec.group), `${name} --${k}: group ${spec.group}`);
      if (spec.required) continue;
      const def = spec.default;
      if (def === "" || (Array.isArray(def) && def.length === 0)) continue;
      assert.deepEqual(
        parseValue(k, spec as FieldSpec, def),
        def,
        `${name} --${k}: default fails its own checks`,
      );
      assert.deepEqual(c[k], def);
    }
  }
});

Deno.test("closed sets are the one source array of each (no copies), and typed as their unions", () => {
  for (const cmd of Object.values(COMMANDS)) {
    const f = cmd.fields as Record<string, { choices?: readonly string[] }>;
    if (f.engine) assert.equal(f.engine.choices, ENGINE_NAMES);
    if (f.backend) assert.equal(f.backend.choices, TFJS_BACKENDS);
    if (f.relevance) assert.equal(f.relevance.choices, RELEVANCE_RULES);
  }
  const ok: DistillConfig["reduction"] = "sum";
  // @ts-expect-error "max" is not a reduction: the config type is the union, not string
  const bad: DistillConfig["reduction"] = "max";
  // @ts-expect-error "gpu" is not an engine
  const badEngine: DistillConfig["engine"] = "gpu";
  assert.ok(ok && bad && badEngine);
});

Deno.test("keys in kebab-, camel- or snake_case; unknown keys name the nearest valid one", () => {
  assert.equal(fieldName("batch_size"), "batchSize");
  for (const key of ["batch_size", "batch-size", "batchSize"]) {
    assert.equal(resolveConfig({ [key]: 32 }).batchSize, 32, key);
  }
  assert.equal(resolveFields(TEST_FIELDS, { rec_num: 2, lrp_epsilon: "0.5" }).recNum, 2);
  assert.throws(
    () => resolveConfig({ batch_sise: 3 }),
    /unknown setting "batch_sise" \(did you mean "batch-size"\?\)/,
  );
  assert.throws(
    () => resolveFields(TRAIN_FIELDS, { temperature: 3 }),
    /unknown setting "temperature" \(a setting of distill\)/,
  );
  assert.equal(nearest("lr-decy", ["lr", "lr-decay"]), "lr-decay");
});

Deno.test("required fields, ranges, lists and architecture names are checked when settings are read", () => {
  assert.throws(
    () => checkRequired(TEST_FIELDS, resolveFields(TEST_FIELDS)),
    /^ConfigError: --model <file\.onnx> is required/,
  );
  assert.throws(() => resolveFields(COMMANDS.convert.fields, { opset: 18 }), /--opset must be <= 17, got 18/);
  assert.throws(() => resolveFields(TEST_FIELDS, { gamma: "0,-1" }), /--gamma must be >= 0, got -1/);
  assert.deepEqual(resolveFields(TEST_FIELDS, { gamma: [0, 0.5, 5] }).gamma, [0, 0.5, 5]);
  assert.throws(() => resolveConfig({ std: "0.5,0,0.5" }), /--std: --std must be positive/);
  assert.throws(
    () => resolveConfig({ student: "resnet18" }),
    /--student: "resnet18" is not a zoo architecture; choose one of resnet8, /,
  );
  assert.equal(archProblem("wrn_16_2"), undefined);
  assert.equal(archProblem("resnet110"), undefined);
});

Deno.test("train's configuration is a distillation without teacher or KL term", () => {
  const t = resolveFields(TRAIN_FIELDS, { epochs: 2, student: "resnet8" });
  const c = trainAsDistill(t);
  assert.deepEqual([c.ceWeight, c.alpha, c.response, c.testTeacher, c.epochs, c.student], [
    1,
    0,
    "plain",
    false,
    2,
    "resnet8",
  ]);
  assert.equal(t.studentOut, "", "train's default output is computed from the data and the student");
  assert.ok(!("temperature" in TRAIN_FIELDS) && !("teacher" in TRAIN_FIELDS) && !("gamma" in TRAIN_FIELDS));
});

Deno.test("flags: --x value, --x=value, --bool, --no-bool, --bool false; unknown flags suggest the nearest", () => {
  const f = COMMANDS.distill.fields;
  assert.deepEqual(
    parseFlags("distill", f, ["--batch-size", "8", "--lr=0.1", "--nesterov", "--no-download"]).values,
    {
      batchSize: "8",
      lr: "0.1",
      nesterov: true,
      download: false,
    },
  );
  assert.deepEqual(parseFlags("distill", f, ["--resume", "false", "--gamma", "-1"]).values, {
    resume: false,
    gamma: "-1",
  });
  const p = parseFlags("test", COMMANDS.test.fields, ["--config", "a.yaml", "-h"]);
  assert.deepEqual([p.config, p.help], ["a.yaml", true]);
  assert.throws(
    () => parseFlags("train", TRAIN_FIELDS, ["--temprature", "2"]),
    /unknown option --temprature for train/,
  );
  assert.throws(() => parseFlags("train", TRAIN_FIELDS, ["--epoch", "2"]), /\(did you mean --epochs\?\)/);
  assert.throws(() => parseFlags("train", TRAIN_FIELDS, ["--epochs"]), /--epochs needs a value/);
  assert.throws(() => parseFlags("train", TRAIN_FIELDS, ["resnet8"]), /unexpected argument "resnet8"/);
});

Deno.test("settings files: JSON or YAML; syntax errors name the file, line and column", () => {
  assert.deepEqual(parseSettings('{"batch_size": 8}', "a.json"), { batch_size: 8 });
  const yaml = parseSettings(
    "# a run\nbatch_size: 8\nschedule: [2, 3]\nnesterov: true\nmean: [0.5, 0.5, 0.5]\n",
    "a.yml",
  );
  const c = resolveConfig(yaml);
  assert.deepEqual([c.batchSize, c.schedule, c.nesterov, c.mean], [8, [2, 3], true, [0.5, 0.5, 0.5]]);
  assert.throws(
    () => parseSettings("epochs: 3\nschedule: [1,\nlr: 0.1\n", "run.yaml"),
    /^ConfigError: run\.yaml:\d+:\d+: YAML syntax error: /,
  );
  assert.throws(
    () => parseSettings("epochs: 3\nepochs: 4\n", "run.yaml"),
    /run\.yaml:2:1: YAML syntax error: Map keys must be unique/,
  );
  assert.throws(() => parseSettings("- 1\n", "run.yaml"), /run\.yaml: settings must be a mapping/);
  assert.throws(() => parseSettings("{ epochs: 2", "run.json"), /run\.json: cannot read settings \(.*JSON/);
});
