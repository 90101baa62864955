import assert from "node:assert/strict";
import { Rng } from "../lib/rng.ts";

Deno.test("Rng is deterministic per seed and restores its state exactly", () => {
  const a = new Rng(123), b = new Rng(123), c = new Rng(124);
  const sa = Array.from({ length: 5 }, () => a.nextUint32());
  assert.deepEqual(sa, Array.from({ length: 5 }, () => b.nextUint32()));
  assert.notDeepEqual(sa, Array.from({ length: 5 }, () => c.nextUint32()));
  const state = a.getState();
  const next = [a.uniform(), a.normal(), a.int(10)];
  a.setState(state);
  assert.deepEqual([a.uniform(), a.normal(), a.int(10)], next);
  assert.throws(() => a.setState([1, 2]), /needs 4 words/);
});

Deno.test("Rng draws have the right distributions", () => {
  const r = new Rng(1);
  const n = 20000;
  let sum = 0, sq = 0, usum = 0;
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    sum += z;
    sq += z * z;
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    usum += u;
  }
  assert.ok(Math.abs(sum / n) < 0.03, `normal mean ${sum / n}`);
  assert.ok(Math.abs(sq / n - 1) < 0.04, `normal var ${sq / n}`);
  assert.ok(Math.abs(usum / n - 0.5) < 0.01, `uniform mean ${usum / n}`);
  const perm = r.shuffle(Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual([...perm].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual(perm, Array.from({ length: 50 }, (_, i) => i));
});
