import assert from "node:assert/strict";
import { createProgress, formatDuration } from "../lib/progress.ts";

Deno.test("plain progress prints periodic lines with rate fields and ETA from the injected clock", () => {
  let out = "";
  let now = 0;
  const text = (): string => out; // read through a function: assert.equal narrows `out` otherwise
  const p = createProgress({
    stream: { write: (s: string) => (out += s) },
    clock: () => now,
    intervalMs: 10_000,
  });
  p.begin("epoch 1/3", 100);
  now = 5_000;
  p.tick(10, { "img/s": 640, loss: 2.345678 });
  assert.equal(text(), "", "no line before the interval");
  now = 20_000;
  p.tick(50, { "img/s": 640, loss: 2.345678 });
  assert.equal(text(), "epoch 1/3: 50/100 (50%) | img/s 640 | loss 2.346 | ETA 20s\n");
  now = 40_000;
  p.tick(100, { "img/s": 640, loss: 1.5 });
  p.end();
  assert.ok(text().endsWith("epoch 1/3: 100/100 (100%) | img/s 640 | loss 1.500 | took 40s\n"), text());
});

Deno.test("terminal progress draws a bar in place", () => {
  let out = "";
  let now = 0;
  const p = createProgress({
    stream: { write: (s: string) => (out += s), isTTY: true, columns: 120 },
    clock: () => now,
  });
  p.begin("epoch 2/3", 10);
  now = 1000;
  p.tick(10, { loss: 0.5 });
  p.end();
  assert.match(out, /epoch 2\/3 .*10\/10 \| loss 0\.5000 \| ETA 0s/);
  assert.ok(out.includes("\x1b["), "uses terminal control sequences");
});

Deno.test("durations format compactly", () => {
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(59.6), "1m00s");
  assert.equal(formatDuration(NaN), "?");
});
