import assert from "node:assert/strict";
import { argmaxRows, MetricsAccumulator } from "../lib/metrics.ts";

Deno.test("accuracy, NLL, entropy and per-class accuracy on a hand-computed batch", () => {
  const acc = new MetricsAccumulator(3, 10);
  // Row 0: confident and right; row 1: uniform (pred class 0, label 1: wrong); row 2: right.
  const logits = new Float32Array([Math.log(6), 0, 0, 0, 0, 0, 0, 0, Math.log(3)]);
  acc.add(logits, new Int32Array([0, 1, 2]));
  const m = acc.result();
  assert.equal(m.count, 3);
  assert.ok(Math.abs(m.top1 - 200 / 3) < 1e-9);
  assert.equal(m.top5, 100); // fewer than 5 classes: top-K is everything
  const nll = (-Math.log(0.75) - Math.log(1 / 3) - Math.log(0.6)) / 3;
  assert.ok(Math.abs(m.nll - nll) < 1e-6, `${m.nll} vs ${nll}`);
  const h = (p: number[]) => -p.reduce((s, v) => s + v * Math.log(v), 0);
  const ent = (h([0.75, 0.125, 0.125]) + h([1 / 3, 1 / 3, 1 / 3]) + h([0.2, 0.2, 0.6])) / 3;
  assert.ok(Math.abs(m.entropy - ent) < 1e-6);
  assert.deepEqual(m.perClass, [100, 0, 100]);
  // ECE with 10 bins: confidences 0.75 (bin (0.7,0.8], right), 1/3 ((0.3,0.4], wrong), 0.6 ((0.5,0.6], right).
  const ece = ((1 - 0.75) + (1 / 3 - 0) + (1 - 0.6)) / 3;
  assert.ok(Math.abs(m.ece / 100 - ece) < 1e-6, `${m.ece} vs ${100 * ece}`);
  assert.ok(Math.abs(m.mce / 100 - 0.4) < 1e-6);
  assert.equal(m.bins[7].count, 1);
  assert.equal(m.bins[3].count, 1);
});

Deno.test("top-5 counts the label among the five best scores", () => {
  const acc = new MetricsAccumulator(10);
  const row = Float32Array.from({ length: 10 }, (_, j) => 10 - j); // class 0 best ... class 9 worst
  acc.add(row, new Int32Array([4]));
  acc.add(row, new Int32Array([5]));
  const m = acc.result();
  assert.equal(m.top1, 0);
  assert.equal(m.top5, 50);
  assert.deepEqual(argmaxRows(new Float32Array([0, 2, 1, 5, 4, 3]), 3), new Int32Array([1, 0]));
  assert.throws(
    () => acc.add(new Float32Array(3), new Int32Array(1)),
    /3 logits for 1 labels and 10 classes/,
  );
});
