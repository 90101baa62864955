/**
 * The package works when imported from a URL by a script with no deno.json (a URL importer does
 * not see our import map): serve the working tree over loopback HTTP, import mod.ts from a
 * scratch folder and call into it, engine and npm dependencies included.
 */
import assert from "node:assert/strict";
import * as path from "node:path";

const ROOT = new URL("../", import.meta.url);

const TYPES: Record<string, string> = { ".ts": "application/typescript", ".json": "application/json" };

/** Serves the working tree over loopback HTTP while `fn` runs. */
async function withServer(fn: (base: string, scratch: string) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const rel = decodeURIComponent(new URL(req.url).pathname).replace(/^\/+/, "");
      if (rel.includes("..")) return new Response("bad path", { status: 400 });
      try {
        const body = await Deno.readFile(new URL(rel, ROOT));
        return new Response(body, { headers: { "content-type": TYPES[path.extname(rel)] ?? "text/plain" } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const scratch = await Deno.makeTempDir({ prefix: "oracle_kd_url_" });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, scratch);
  } finally {
    ac.abort();
    await server.finished;
    await Deno.remove(scratch, { recursive: true });
  }
}

Deno.test("mod.ts imported over HTTP from a folder without deno.json builds and runs a model", async () => {
  await withServer(async (base, scratch) => {
    await Deno.writeTextFile(
      path.join(scratch, "use.ts"),
      `import { buildModel, countParameters, createEngine, initStateDict } from "${base}/mod.ts";
const g = buildModel("resnet8", { numClasses: 10 });
const engine = await createEngine({ engine: "tfjs", backend: "wasm" });
const net = await engine.loadFrozen(g, initStateDict(g, 0));
const logits = await net.forward({ x: new Float32Array(2 * 3 * 32 * 32), n: 2, shape: [3, 32, 32] });
console.log(JSON.stringify({ params: countParameters(g), logits: logits.length, engine: engine.name }));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", "--reload=" + base, "use.ts"],
      cwd: scratch,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `import from URL failed:\n${stderr}`);
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(result, { params: 78042, logits: 20, engine: "tfjs-wasm" });
  });
});

Deno.test("examples/library.ts (the README's library example) runs over HTTP with the permissions the README states", async () => {
  await withServer(async (base, scratch) => {
    const host = new URL(base).host;
    const out = await new Deno.Command(Deno.execPath(), {
      // Exactly the README's flags, plus --allow-import for the loopback host.
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
        `--allow-import=${host}`,
        "--no-lock",
        "--reload=" + base,
        `${base}/examples/library.ts`,
        scratch,
      ],
      cwd: scratch,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `the example failed:\n${stdout}\n${new TextDecoder().decode(out.stderr)}`);
    assert.match(stdout, /^epoch 1: test top-1 [\d.]+%, ECE [\d.]+%$/m, "onEpoch callback");
    assert.match(stdout, /^epoch 3\/3: 8\/8 steps, loss \d/m, "onProgress callback");
    assert.match(stdout, /^distill completed: 3 epochs/m);
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.deepEqual([result.out, result.epochs, result.studentImages], [scratch, 3, 64]);
    assert.ok(result.teacherTop1 > 25, `teacher top-1 ${result.teacherTop1}% is not above chance (25%)`);
    for (
      const f of [
        "teacher.onnx",
        "student.onnx",
        "student.best.onnx",
        "teacher_copy.onnx",
        "teacher_reliability.png",
      ]
    ) {
      assert.ok((await Deno.stat(`${scratch}/${f}`)).size > 0, f);
    }
    const png = await Deno.readFile(`${scratch}/teacher_reliability.png`);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  });
});
