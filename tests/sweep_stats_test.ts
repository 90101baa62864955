import assert from "node:assert/strict";
import { mean, pairedDifference, sampleStd, studentTCdf, studentTQuantile } from "../app/sweep/stats.ts";

Deno.test("sweep stats: t quantiles match the published table", () => {
  // scipy.stats.t.ppf(p, df), 9 significant digits
  const table: [number, number, number][] = [
    [0.975, 1, 12.7062047],
    [0.975, 2, 4.30265273],
    [0.975, 3, 3.18244631],
    [0.975, 4, 2.77644511],
    [0.975, 9, 2.26215716],
    [0.975, 29, 2.04522964],
    [0.975, 1000, 1.96233908],
    [0.95, 5, 2.01504837],
    [0.995, 10, 3.16927267],
  ];
  for (const [p, df, want] of table) {
    const got = studentTQuantile(p, df);
    assert.ok(Math.abs(got - want) < 1e-6 * want, `t(${p}, ${df}) = ${got}, want ${want}`);
    assert.ok(Math.abs(studentTCdf(want, df) - p) < 1e-8);
    assert.ok(Math.abs(studentTQuantile(1 - p, df) + want) < 1e-6 * want);
  }
  assert.equal(studentTQuantile(0.5, 3), 0);
  assert.ok(Number.isNaN(studentTQuantile(0.975, 0)));
});

Deno.test("sweep stats: mean, sample std and the paired t interval", () => {
  assert.equal(mean([1, 2, 3, 6]), 3);
  assert.ok(Math.abs(sampleStd([1, 2, 3, 6]) - Math.sqrt(14 / 3)) < 1e-12);
  assert.ok(Number.isNaN(sampleStd([5])));
  // d = [0.4, 0.9, -0.1, 0.6, 0.2]: mean 0.4, sd sqrt(0.145), t(0.975, 4) = 2.776445
  const d = pairedDifference([70.4, 71.9, 69.9, 72.6, 70.2], [70, 71, 70, 72, 70]);
  assert.equal(d.n, 5);
  assert.ok(Math.abs(d.mean - 0.4) < 1e-9);
  assert.ok(Math.abs(d.std - Math.sqrt(0.145)) < 1e-9);
  const half = 2.7764451 * Math.sqrt(0.145) / Math.sqrt(5);
  assert.ok(Math.abs(d.low - (0.4 - half)) < 1e-6 && Math.abs(d.high - (0.4 + half)) < 1e-6);
  assert.ok(d.low < 0 && d.high > 0); // this difference is within seed noise
  const one = pairedDifference([71], [70]);
  assert.equal(one.mean, 1);
  assert.ok(Number.isNaN(one.low));
  assert.throws(() => pairedDifference([1, 2], [1]), /differ in length/);
});
