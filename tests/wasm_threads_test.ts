/**
 * The multithreaded wasm backend: it starts with the wanted thread count, computes the same
 * results as the single-threaded one, honours ORACLE_KD_WASM_THREADS, and never keeps the
 * process alive.
 * @module
 */

import assert from "node:assert/strict";
import { initTfjs } from "../lib/engines/tfjs/backend.ts";
import { defaultWasmThreads, WASM_THREADS_ENV, wasmThreadsStatus } from "../lib/engines/tfjs/wasm_threads.ts";

const BACKEND_URL = new URL("../lib/engines/tfjs/backend.ts", import.meta.url).href;
const THREADS_URL = new URL("../lib/engines/tfjs/wasm_threads.ts", import.meta.url).href;

/** Runs a script in a fresh Deno; returns its exit code, stdout and how long it took. */
async function runScript(code: string, env: Record<string, string> = {}, args = ["eval", "--quiet", code]) {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** A script that starts wasm, runs a convolution and prints the thread status and a checksum. */
const CONV_SCRIPT = `
  import { initTfjs } from "${BACKEND_URL}";
  import { wasmThreadsStatus } from "${THREADS_URL}";
  const tf = await initTfjs("wasm");
  const x = tf.tensor4d(Float32Array.from({ length: 8 * 16 * 16 * 8 }, (_, i) => Math.sin(i)), [8, 16, 16, 8]);
  const w = tf.tensor4d(Float32Array.from({ length: 3 * 3 * 8 * 16 }, (_, i) => Math.cos(i)), [3, 3, 8, 16]);
  const y = tf.conv2d(x, w, 1, 1);
  console.log(JSON.stringify({ status: wasmThreadsStatus(), values: Array.from(y.dataSync().slice(0, 64)) }));
`;

Deno.test("the wasm backend runs multithreaded where there are several cores", async () => {
  await initTfjs("wasm");
  const status = wasmThreadsStatus();
  const wanted = defaultWasmThreads();
  assert.equal(status.error, undefined, `threaded build failed: ${status.error}`);
  assert.equal(status.threads, wanted);
});

Deno.test("threaded and single-threaded backends agree, and neither keeps the process alive", async () => {
  const multi = await runScript(CONV_SCRIPT, { [WASM_THREADS_ENV]: "2" });
  assert.equal(multi.code, 0, multi.stderr);
  const single = await runScript(CONV_SCRIPT, { [WASM_THREADS_ENV]: "1" });
  assert.equal(single.code, 0, single.stderr);
  const a = JSON.parse(multi.stdout), b = JSON.parse(single.stdout);
  assert.deepEqual(a.status, { threads: 2 });
  assert.deepEqual(b.status, { threads: 1 });
  a.values.forEach((v: number, i: number) =>
    assert.ok(Math.abs(v - b.values[i]) <= 1e-4 * Math.max(1, Math.abs(b.values[i])))
  );
  // Idle pthread workers are unref'd: the script ends as soon as its work does.
  assert.ok(multi.seconds < 30, `threaded script took ${multi.seconds.toFixed(1)} s to exit`);
});

Deno.test("without the threaded build (here: no write permission) wasm falls back to one thread and says why", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(script, CONV_SCRIPT);
    const r = await runScript("", { [WASM_THREADS_ENV]: "2" }, [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-env",
      script,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status.threads, 1);
    assert.match(out.status.error, /write access/);
    assert.match(r.stderr, /multithreaded build unavailable/);
    const reference = JSON.parse((await runScript(CONV_SCRIPT, { [WASM_THREADS_ENV]: "1" })).stdout);
    assert.deepEqual(out.values, reference.values);
  } finally {
    await Deno.remove(script);
  }
});

Deno.test("ORACLE_KD_WASM_THREADS must be a positive integer", async () => {
  const r = await runScript(
    `import { defaultWasmThreads } from "${THREADS_URL}"; try { defaultWasmThreads(); } catch (e) { console.log(e.message); }`,
    { [WASM_THREADS_ENV]: "two" },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ORACLE_KD_WASM_THREADS must be a positive integer, got "two"/);
});
