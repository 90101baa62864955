import assert from "node:assert/strict";
import { progressLine, threadsPerJob } from "../app/sweep/local.ts";
import type { CellState, SweepState } from "../app/sweep/state.ts";

function state(cells: CellState[]): SweepState {
  const counts = { done: 0, running: 0, failed: 0, interrupted: 0, pending: 0 };
  for (const c of cells) counts[c.status]++;
  return { name: "s", updated: "", counts, cells };
}

const cell = (
  name: string,
  status: CellState["status"],
  done: number,
  secs: number | null,
  group: string,
) => ({
  name,
  dir: "",
  status,
  epochsDone: done,
  epochs: 10,
  epochSeconds: secs,
  group,
});

Deno.test("sweep progress: one line with counts, running cells' epochs and an ETA per method", () => {
  const s = state([
    cell("ce0", "done", 10, 10, "train"),
    cell("or0", "running", 4, 60, "oracle"),
    cell("or1", "pending", 0, null, "oracle"),
    cell("ce1", "interrupted", 5, 10, "train"),
    cell("kd0", "failed", 0, null, "plain"),
    cell("kd1", "pending", 0, null, "plain"),
  ]);
  // left: or0 6x60 + or1 10x60 + ce1 5x10 + kd1 10 x overall mean; overall = (100+240+50)/19 s per epoch
  const overall = (10 * 10 + 4 * 60 + 5 * 10) / 19;
  const seconds = (6 * 60 + 10 * 60 + 5 * 10 + 10 * overall) / 2;
  const line = progressLine(s, 2, 0);
  assert.equal(
    line,
    `sweep    1/6 done, 1 running, 1 failed, 3 to run | or0 4/10 epochs | ETA ${
      Math.floor(Math.round(seconds) / 60)
    }m${String(Math.round(seconds) % 60).padStart(2, "0")}s`,
  );
  assert.match(progressLine(state([cell("a", "pending", 0, null, "x")]), 1, 0), /ETA \?$/);
  assert.match(progressLine(state([cell("a", "done", 10, 1, "x")]), 1, 0), /1\/1 done.*ETA 0s$/);
});

Deno.test("sweep progress: cores are divided between parallel runs", () => {
  assert.equal(threadsPerJob(16, 4), 4);
  assert.equal(threadsPerJob(16, 3), 5);
  assert.equal(threadsPerJob(2, 4), 1);
  assert.equal(threadsPerJob(8, 0), 8);
});

Deno.test("sweep threads: ORACLE_KD_THREADS sets onnxruntime's threads per run; a bad value is refused", async () => {
  const code = `import { defaultThreads } from "${
    new URL("../lib/engines/onnxruntime/session.ts", import.meta.url).href
  }"; console.log(defaultThreads());`;
  const run = async (value: string) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env: { ORACLE_KD_THREADS: value },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      ok: r.success,
      out: new TextDecoder().decode(r.stdout).trim(),
      err: new TextDecoder().decode(r.stderr),
    };
  };
  assert.equal((await run("3")).out, "3");
  assert.equal((await run("")).out, String(navigator.hardwareConcurrency));
  const bad = await run("two");
  assert.equal(bad.ok, false);
  assert.match(bad.err, /ORACLE_KD_THREADS must be a positive integer, got "two"/);
});
