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
