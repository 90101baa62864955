/**
 * The package works when imported from a URL by a script with no deno.json (a URL importer does
 * not see our import map): serve the working tree over loopback HTTP, import mod.ts from a
 * scratch folder and call into it, engine and npm dependencies included.
 */
import assert from "node:assert/strict";
import * as path from "node:path";

const ROOT = new URL("../", import.meta.url);

const TYPES: Record<string, string> = { ".ts": "application/typescript", ".json": "application/json" };

Deno.test("mod.ts imported over HTTP from a folder without deno.json builds and runs a model", async () => {
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
    const base = `http://127.0.0.1:${server.addr.port}`;
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
  } finally {
    ac.abort();
    await server.finished;
    await Deno.remove(scratch, { recursive: true });
  }
});
