/**
 * Hostile files (issue 16, item 3): every reader of untrusted bytes (pickle, .pth/zip, ONNX
 * protobuf, PNG, gzip/tar, IDX, safetensors, CIFAR records) gets a seeded corpus of crafted files
 * (the cases: dicts that refer to each other, a shared subtree, tiny files declaring
 * gigabytes, decompression bombs, deep nesting, a memo bomb, quadratic copies, pickles that call
 * os.system) and of randomly mutated valid files. Each file is read in a subprocess
 * (tests/hostile_runner.ts) that reports its time and peak resident memory; each must be read
 * correctly or refused within a few seconds, with one error line naming the file, in under 1 GB,
 * and no pickle may run anything.
 *
 * The crafted .pth/PNG/gzip/tar files come from tools/make_hostile_fixtures.py (PyTorch);
 * the rest are built here.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { unpickle } from "../convert/pickle.ts";
import { importOnnx } from "../convert/onnx_import.ts";
import { decodeOnnxModel, encodeOnnxModel } from "../convert/onnx_proto.ts";
import { ZipArchive } from "../convert/zip_reader.ts";
import { gzip, writeTar } from "../lib/data/archive.ts";
import { encodePng, zipSync } from "../lib/deps.ts";
import { Rng } from "../lib/rng.ts";
import { encodeSafetensors } from "../lib/safetensors.ts";
import { decodeBase64 } from "./test_utils.ts";

const DIR = Deno.makeTempDirSync({ prefix: "okd_hostile_" });
globalThis.addEventListener("unload", () => Deno.removeSync(DIR, { recursive: true }));
const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, "fixtures", "hostile");
const RUNNER = path.join(HERE, "hostile_runner.ts");
/** Where a pickle that managed to run `touch` would leave its mark. */
const MARKER = path.join(DIR, "code_ran");

/** Limits every file must meet (generous: the machine running the tests may be busy). */
const MAX_MS = 8000;
const MAX_RSS_MB = 1024;
/** Messages that mean a budget was missing, not a file refused on purpose. */
const CRASH =
  /Maximum call stack|Map maximum size|Invalid array length|Array buffer allocation failed|Invalid typed array length|out of memory|is not a function|Cannot read properties|is not iterable|undefined/;

interface Case {
  reader: string;
  file: string;
  /** Must be refused with a message matching this; undefined: read or refused, either is fine. */
  refused?: RegExp;
}

const enc = new TextEncoder();
const bytesOf = (...parts: (number | string | Uint8Array)[]) => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") out.push(...enc.encode(p));
    else for (const b of p) out.push(b);
  }
  return new Uint8Array(out);
};
const u32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];

function write(name: string, data: Uint8Array): string {
  const p = path.join(DIR, name);
  Deno.writeFileSync(p, data);
  return p;
}

/** A torch.save-style archive around a data.pkl (stored entries). */
function pthOf(pkl: Uint8Array, extra: Record<string, Uint8Array> = {}): Uint8Array {
  return zipSync({ "archive/data.pkl": pkl, "archive/version": enc.encode("3\n"), ...extra }, { level: 0 });
}

/** Seeded mutations of a valid file: flipped bytes, truncation, a saturated 4-byte field, a repeated slice. */
function mutations(base: Uint8Array, seed: number, count: number): Uint8Array[] {
  const r = new Rng(seed);
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    let b = base.slice();
    switch (k % 4) {
      case 0:
        for (let i = 0, n = 1 + r.int(8); i < n; i++) b[r.int(b.length)] = r.int(256);
        break;
      case 1:
        b = b.slice(0, r.int(b.length));
        break;
      case 2: {
        const at = r.int(Math.max(1, b.length - 4));
        b.set([0xff, 0xff, 0xff, 0x7f].slice(0, b.length - at), at);
        break;
      }
      default: {
        const at = r.int(b.length), len = 1 + r.int(64);
        const piece = b.slice(at, at + len);
        const grown = new Uint8Array(b.length + piece.length * 4);
        grown.set(b.subarray(0, at));
        for (let i = 0; i < 4; i++) grown.set(piece, at + i * piece.length);
        grown.set(b.subarray(at), at + 4 * piece.length);
        b = grown;
      }
    }
    out.push(b);
  }
  return out;
}

/**
 * Hand-built protobuf of empty messages nested as `fields` says (outermost first): each level is
 * a length-delimited field holding the next. Lengths are computed inside out, in one pass.
 */
function pbNest(fields: number[]): Uint8Array {
  const varint = (n: number) => {
    const b: number[] = [];
    for (; n >= 128; n = Math.floor(n / 128)) b.push((n & 127) | 128);
    b.push(n);
    return b;
  };
  const heads: number[][] = [];
  let len = 0;
  for (let i = fields.length - 1; i >= 0; i--) {
    const h = [(fields[i] << 3) | 2, ...varint(len)];
    heads.push(h);
    len += h.length;
  }
  return new Uint8Array(heads.reverse().flat());
}

function buildCorpus(): Case[] {
  const cases: Case[] = [];
  const fx = (name: string) => path.join(FIXTURES, name);
  const add = (reader: string, file: string, refused?: RegExp) => cases.push({ reader, file, refused });

  // ---- .pth and pickles: the files ----
  add("pth", fx("cycle.pth"), /holds no state dict/);
  add("pth", fx("shared_subtree.pth"), /holds no state dict/);
  add("pth", fx("expand_view.pth"), /would make the tensors exceed .* refused/);
  add("pth", fx("many_views.pth"), /would make the tensors exceed .* refused/);
  add("pth", fx("deep_modules.pth"), /nested more than 256 deep/);
  add("pth", fx("deep_pid.pth"), /unknown persistent id/);
  add("pth", fx("deflate_bomb.pth"), /zip bomb/);
  add("pth", fx("declared_huge.pth"), /decompression bomb/);
  add("pth", fx("nan_weights.pth"), /non-finite weights/);
  add("pth", fx("long_key.pth"), /a tensor name of 5000 characters \(x{80}\.\.\.\); at most 1000/);
  add("zip", fx("deflate_bomb.pth"), /zip bomb/);

  // A memo bomb: one value memoized 2^18 + 16 times (the cap; 2^24 made "Map maximum size exceeded").
  const memo = new Uint8Array(3 + (1 << 18) + 16 + 1).fill(0x94);
  memo.set([0x80, 2, 0x4e]);
  memo[memo.length - 1] = 0x2e;
  add("pickle", write("memo_bomb.pkl", memo), /memo bomb/);
  add("pth", write("memo_bomb.pth", pthOf(memo)), /memo bomb/);
  // Quadratic copies: set(L) of one 20000-item list, 20000 times.
  const n = 20000;
  const quad = [0x80, 2, ...enc.encode("cbuiltins\nset\n"), 0x71, 1, 0x5d, 0x28];
  for (let i = 0; i < n; i++) quad.push(0x4b, i & 255);
  quad.push(0x65, 0x71, 0);
  for (let i = 0; i < n; i++) quad.push(0x68, 1, 0x68, 0, 0x85, 0x52, 0x30);
  quad.push(0x4e, 0x2e);
  add("pickle", write("quadratic.pkl", new Uint8Array(quad)), /element copies/);
  // An integer of 100000 bytes (quadratic to decode).
  const long = new Uint8Array(2 + 5 + 100000 + 1);
  long.set([0x80, 2, 0x8b, ...u32(100000)]);
  long[long.length - 1] = 0x2e;
  add("pickle", write("long_int.pkl", long), /integer of 100000 bytes/);
  // A million nested tuples: the unpickler has no recursion to overflow.
  const deep = new Uint8Array(3 + 1_000_000 + 1).fill(0x85);
  deep.set([0x80, 2, 0x4e]);
  deep[deep.length - 1] = 0x2e;
  add("pickle", write("deep_tuples.pkl", deep));
  add("pth", write("deep_tuples.pth", pthOf(deep)), /holds no state dict/);
  // Pickles that would run a command: refused by name, nothing runs.
  const touch = `touch ${MARKER}`;
  for (
    const [mod, name] of [["posix", "system"], ["os", "system"], ["builtins", "eval"], ["subprocess", "call"]]
  ) {
    const pkl = bytesOf(0x80, 2, `c${mod}\n${name}\n`, 0x58, ...u32(touch.length), touch, 0x85, 0x52, 0x2e);
    add("pickle", write(`call_${mod}_${name}.pkl`, pkl), /which is not allowed/);
    add("pth", write(`call_${mod}_${name}.pth`, pthOf(pkl)), /which is not allowed/);
  }
  // ... also smuggled through a tensor-subclass rebuilder.
  const smuggled = bytesOf(
    0x80,
    2,
    "ctorch._tensor\n_rebuild_from_type_v2\n",
    0x28, // MARK: (func, new_type, args, state)
    "cposix\nsystem\n",
    0x4e,
    0x58,
    ...u32(touch.length),
    touch,
    0x85,
    0x4e,
    0x74, // TUPLE
    0x52, // REDUCE
    0x2e,
  );
  add("pth", write("smuggled.pth", pthOf(smuggled)), /posix\.system, which is not allowed/);

  // Seeded mutations of real torch.save files and of their pickles.
  const module = Deno.readFileSync(path.join(HERE, "fixtures", "pth", "resnet8_module.pth"));
  const views = Deno.readFileSync(path.join(HERE, "fixtures", "pth", "views_dtypes.pth"));
  mutations(module, 1, 8).forEach((b, i) => add("pth", write(`module_mut${i}.pth`, b)));
  mutations(views, 2, 12).forEach((b, i) => add("pth", write(`views_mut${i}.pth`, b)));
  mutations(views, 3, 8).forEach((b, i) => add("zip", write(`views_zip_mut${i}.pth`, b)));
  const zip = new ZipArchive(views);
  const pkl = zip.read(zip.names().find((nm) => nm.endsWith("data.pkl"))!);
  mutations(pkl, 4, 16).forEach((b, i) => add("pickle", write(`views_mut${i}.pkl`, b)));
  const pickles = JSON.parse(Deno.readTextFileSync(path.join(HERE, "fixtures", "pth", "pickles.json")));
  (pickles.cases as { b64: string }[]).forEach((c, k) =>
    mutations(decodeBase64(c.b64), 10 + k, 4).forEach((b, i) =>
      add("pickle", write(`value_p${k}_mut${i}.pkl`, b))
    )
  );

  // ---- ONNX ----
  // graph { node { attribute { g { node { attribute { g ... } } } } } }, 20000 graphs deep
  const fields = [7, ...Array.from({ length: 20000 }, () => [1, 5, 6]).flat()];
  add("onnx", write("deep_graphs.onnx", bytesOf(0x08, 8, pbNest(fields))), /nested more than 100 deep/);
  add(
    "onnx",
    write("groups.onnx", bytesOf(0x08, 8, new Uint8Array(200000).fill(0x0b))),
    /nested more than 100 deep/,
  );
  const onnx = Deno.readFileSync(path.join(HERE, "fixtures", "onnx", "resnet8_opset13.onnx"));
  mutations(onnx, 5, 12).forEach((b, i) => add("onnx", write(`resnet8_mut${i}.onnx`, b)));
  // An initializer declaring 2^40 values with none stored.
  const m = decodeOnnxModel(onnx, "resnet8_opset13.onnx");
  m.initializers[0] = { ...m.initializers[0], dims: [1 << 20, 1 << 20], data: new Float32Array(0) };
  add("onnx", write("huge_dims.onnx", encodeOnnxModel(m)), /holds 0 values but its shape/);

  // 20000 nodes with one name (renaming them used to be quadratic: minutes for 1 MB).
  const chain = decodeOnnxModel(onnx, "resnet8_opset13.onnx");
  const at = chain.nodes.findIndex((nd) => nd.opType === "Relu");
  const relu = chain.nodes[at];
  chain.nodes.splice(
    at,
    1,
    ...Array.from({ length: 20000 }, (_, k) => ({
      name: "same",
      opType: "Relu",
      domain: "",
      inputs: [k === 0 ? relu.inputs[0] : `r${k - 1}`],
      outputs: [k === 19999 ? relu.outputs[0] : `r${k}`],
      attributes: [],
    })),
  );
  add("onnx", write("same_names.onnx", encodeOnnxModel(chain)));

  // ---- PNG ----
  add("png", fx("huge_dims.png"), /declares 30000x30000 pixels/);
  add("png", fx("bomb.png"), /decompression bomb/);
  const png = encodePng({
    width: 8,
    height: 8,
    channels: 3,
    depth: 8,
    data: new Rng(6).shuffle(Array.from({ length: 192 }, (_, i) => i)).reduce(
      (a, v, i) => (a[i] = v, a),
      new Uint8Array(192),
    ),
  });
  mutations(png, 7, 12).forEach((b, i) => add("png", write(`img_mut${i}.png`, b)));

  // ---- gzip, tar, IDX, CIFAR ----
  add("idx", fx("gzip_bomb.idx.gz"), /decompression bomb/);
  add("tar", fx("tar_bad_size.tar"), /entry size is not a number/);
  const idx = gzip(bytesOf(0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, new Uint8Array(2 * 784)));
  mutations(idx, 8, 8).forEach((b, i) => add("idx", write(`idx_mut${i}.gz`, b)));
  add(
    "idx",
    write(
      "idx_dims.idx",
      bytesOf(0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    ),
    /need/,
  );
  const tgz = gzip(
    writeTar([{ name: "a/b.bin", data: new Uint8Array(700) }, { name: "a/c.txt", data: enc.encode("x") }]),
  );
  mutations(tgz, 9, 8).forEach((b, i) => add("tar", write(`tar_mut${i}.tar.gz`, b)));
  const tar = writeTar([{ name: "a/b.bin", data: new Uint8Array(700) }]);
  mutations(tar, 10, 8).forEach((b, i) => add("tar", write(`tar_mut${i}.tar`, b)));
  const cifar = new Uint8Array(2 * 3073);
  mutations(cifar, 11, 4).forEach((b, i) => add("cifar", write(`cifar_mut${i}.bin`, b)));

  // ---- safetensors ----
  const st = encodeSafetensors(
    new Map([["w", { dtype: "float32" as const, shape: [4, 4], data: new Float32Array(16) }]]),
  );
  mutations(st, 12, 12).forEach((b, i) => add("safetensors", write(`st_mut${i}.safetensors`, b)));
  // 4000 tensors all naming the same MiB: 4 GB of copies from a 1 MB file.
  const header: Record<string, unknown> = {};
  for (let i = 0; i < 4000; i++) {
    header[`t${i}`] = { dtype: "F32", shape: [1 << 18], data_offsets: [0, 1 << 20] };
  }
  const json = enc.encode(JSON.stringify(header));
  const overlap = new Uint8Array(8 + json.length + (1 << 20));
  new DataView(overlap.buffer).setBigUint64(0, BigInt(json.length), true);
  overlap.set(json, 8);
  add("safetensors", write("overlap.safetensors", overlap), /overlapping/);
  add(
    "safetensors",
    write("header_len.safetensors", bytesOf(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, "{}")),
    /header claims/,
  );
  return cases;
}

/** Runs the runner over `cases`, in a few subprocesses (one per reader). */
async function runAll(cases: Case[]): Promise<Map<string, Record<string, unknown>>> {
  const results = new Map<string, Record<string, unknown>>();
  const readers = [...new Set(cases.map((c) => c.reader))];
  await Promise.all(readers.map(async (reader) => {
    const mine = cases.filter((c) => c.reader === reader);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", RUNNER, ...mine.map((c) => `${reader}:${c.file}`)],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const out = await child.output();
    clearTimeout(timer);
    let started = "";
    for (const line of new TextDecoder().decode(out.stdout).split("\n").filter(Boolean)) {
      const r = JSON.parse(line);
      if (r.start) started = r.start;
      else results.set(`${reader}:${r.file}`, r);
    }
    for (const c of mine) {
      if (!results.has(`${reader}:${c.file}`)) {
        results.set(`${reader}:${c.file}`, {
          killed: true,
          error: `the ${reader} runner stopped (code ${out.code}) while reading ${started}: ${
            new TextDecoder().decode(out.stderr).split("\n").slice(-5).join(" | ")
          }`,
        });
      }
    }
  }));
  return results;
}

const t0 = performance.now();
const corpus = buildCorpus();
const t1 = performance.now();
const results = await runAll(corpus);
if (Deno.env.get("HOSTILE_REPORT")) {
  const rs = [...results.values()];
  console.log(
    `corpus ${(t1 - t0).toFixed(0)} ms, runners ${(performance.now() - t1).toFixed(0)} ms; slowest ` +
      `${Math.max(...rs.map((r) => r.ms as number)).toFixed(0)} ms, highest peak RSS ` +
      `${Math.max(...rs.map((r) => r.peakRssMb as number)).toFixed(0)} MB, ${
        rs.filter((r) => r.ok).length
      } read`,
  );
  for (const r of rs) {
    if ((r.ms as number) > 1000 || (r.peakRssMb as number) > 300) {
      console.log(r.file, (r.ms as number).toFixed(0), (r.peakRssMb as number).toFixed(0));
    }
  }
}

Deno.test(`hostile files: ${corpus.length} crafted and mutated files, each read or refused in seconds and under 1 GB`, () => {
  const failures: string[] = [];
  for (const c of corpus) {
    const r = results.get(`${c.reader}:${c.file}`)!;
    const name = `${c.reader} ${path.basename(c.file)}`;
    if (r.killed) {
      failures.push(`${name}: ${r.error}`);
      continue;
    }
    const error = r.error as string | null;
    if ((r.ms as number) > MAX_MS) failures.push(`${name}: took ${(r.ms as number).toFixed(0)} ms`);
    if ((r.peakRssMb as number) > MAX_RSS_MB) {
      failures.push(`${name}: peak RSS ${(r.peakRssMb as number).toFixed(0)} MB`);
    }
    if (error !== null) {
      if (error.includes("\n")) failures.push(`${name}: error of several lines: ${error}`);
      if (error.length > 1000) {
        failures.push(`${name}: an error of ${error.length} characters: ${error.slice(0, 200)}`);
      }
      if (!error.includes(c.file)) failures.push(`${name}: error does not name the file: ${error}`);
      if (CRASH.test(error)) failures.push(`${name}: a missing budget, not a refusal: ${error}`);
    }
    if (c.refused && (error === null || !c.refused.test(error))) {
      failures.push(`${name}: expected a refusal matching ${c.refused}, got ${error ?? "a successful read"}`);
    }
  }
  assert.deepEqual(failures, []);
});

Deno.test("hostile files: no pickle ran anything", async () => {
  await assert.rejects(Deno.stat(MARKER), Deno.errors.NotFound);
  assert.throws(
    () => unpickle(Deno.readFileSync(path.join(DIR, "call_posix_system.pkl"))),
    /posix\.system, which is not allowed/,
  );
});

Deno.test("hostile files: the mutated corpus is not all refused (valid reads stay valid)", () => {
  // A check on the check: the unmutated shapes of each format read fine in-process.
  assert.doesNotThrow(() =>
    importOnnx(Deno.readFileSync(path.join(HERE, "fixtures", "onnx", "resnet8_opset13.onnx")), "ok.onnx")
  );
  const ok = corpus.filter((c) => results.get(`${c.reader}:${c.file}`)?.ok).length;
  assert.ok(ok > 0, "some mutated files (a changed weight value) still read");
});
