/**
 * The benchmark's round structure (bench/engine_bench.ts): every runner alternates with the
 * others round by round, the order rotating, and rounds combine into medians with every round
 * kept; a case without its own PyTorch counterpart names the one it is compared with.
 * @module
 */

import assert from "node:assert/strict";
import { alternate, CASES, combine, type Row, TORCH_LAYOUTS, torchCase } from "../bench/engine_bench.ts";

const row = (ms: number, batch = 64): Row => ({
  case: "c",
  batch,
  iters: 5,
  ms_median: ms,
  ms_min: ms - 1,
  images_per_s: Number(((batch / ms) * 1000).toFixed(1)),
  peak_rss_mb: ms,
});

Deno.test("bench: runners alternate round by round, the order rotating, and every round is kept", async () => {
  const calls: string[] = [];
  const times: Record<string, number[]> = { ours: [100, 300, 200], nchw: [50, 60, 70], cl: [40, 40, 40] };
  const runner = (label: string) => ({
    label,
    run: () => {
      calls.push(label);
      return Promise.resolve(row(times[label][calls.filter((c) => c === label).length - 1]));
    },
  });
  const got = await alternate([runner("ours"), runner("nchw"), runner("cl")], 3);
  assert.deepEqual(calls, ["ours", "nchw", "cl", "nchw", "cl", "ours", "cl", "ours", "nchw"]);
  const ours = got.ours;
  assert.ok(typeof ours !== "string");
  assert.deepEqual(ours.rounds_ms, [100, 300, 200]);
  assert.equal(ours.ms_median, 200);
  assert.equal(ours.ms_min, 99);
  assert.equal(ours.images_per_s, 320);
  assert.equal(ours.peak_rss_mb, 300);
  assert.equal(ours.iters, 15);
});

Deno.test("bench: a runner that always fails reports its error; an even number of rounds takes the middle mean", async () => {
  const got = await alternate([
    { label: "bad", run: () => Promise.reject(new Error("no adapter")) },
    { label: "good", run: () => Promise.resolve(row(100)) },
  ], 2);
  assert.equal(got.bad, "no adapter");
  assert.equal(combine([row(100), row(150)]).ms_median, 125);
});

Deno.test("bench: every case has a PyTorch counterpart or says it has none", () => {
  for (const name of Object.keys(CASES)) {
    const ref = torchCase(name);
    assert.ok(ref === null || ref === name || ref in CASES, `${name} -> ${ref}`);
  }
  assert.equal(torchCase("kd_step"), "kd_step");
});

Deno.test("bench: the PyTorch layouts are tools/torch_bench.py's --memory-format choices, each with its own keys", async () => {
  const py = await Deno.readTextFile(new URL("../tools/torch_bench.py", import.meta.url));
  const choices = /"--memory-format", choices=\[([^\]]*)\]/.exec(py)?.[1];
  assert.ok(choices, "torch_bench.py has no --memory-format choices");
  assert.deepEqual(TORCH_LAYOUTS.map((t) => `"${t.layout}"`).join(", "), choices);
  for (const field of ["key", "ratio", "label"] as const) {
    assert.equal(new Set(TORCH_LAYOUTS.map((t) => t[field])).size, TORCH_LAYOUTS.length, field);
  }
});
