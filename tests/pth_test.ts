import assert from "node:assert/strict";
import { zipSync } from "../lib/deps.ts";
import type { StateDict } from "../lib/tensor.ts";
import { CheckpointError, loadPth, readCheckpoint } from "../convert/pth.ts";
import { ZipArchive } from "../convert/zip_reader.ts";
import { loadFixture } from "./fixtures.ts";
import { hasShared, SHARED_DIR } from "./test_utils.ts";

interface TensorStats {
  shape: number[];
  dtype: string;
  sum: number;
  sumsq: number;
  first: number[];
}
type Stats = Record<string, TensorStats>;

const expected = await loadFixture("pth/expected.json");
const teacherStats = expected.meta.teachers as Record<string, Stats>;
const resnet8Stats = expected.meta.resnet8 as Stats;
const viewShapes = expected.meta.view_shapes as Record<string, number[]>;
const fixturePath = (name: string) => new URL(`./fixtures/pth/${name}`, import.meta.url).pathname;
const fixtureBytes = (name: string) => Deno.readFileSync(fixturePath(name));

/** Every tensor's shape, dtype, sum, sum of squares and first values against PyTorch's. */
function assertMatchesStats(sd: StateDict, stats: Stats, label: string): void {
  assert.deepEqual([...sd.keys()], Object.keys(stats), `${label}: keys and their order`);
  for (const [key, s] of Object.entries(stats)) {
    const t = sd.get(key)!;
    assert.deepEqual(t.shape, s.shape, `${label} ${key} shape`);
    assert.equal(t.dtype, s.dtype === "int64" ? "int64" : "float32", `${label} ${key} dtype`);
    let sum = 0, sumsq = 0;
    for (const v of t.data) {
      sum += v;
      sumsq += v * v;
    }
    // Same float32 values summed in float64; only the summation order differs.
    const tol = 1e-9 * (1 + Math.abs(s.sumsq));
    assert.ok(Math.abs(sum - s.sum) <= tol, `${label} ${key} sum ${sum} vs ${s.sum}`);
    assert.ok(Math.abs(sumsq - s.sumsq) <= tol, `${label} ${key} sumsq ${sumsq} vs ${s.sumsq}`);
    assert.deepEqual([...t.data.subarray(0, s.first.length)], s.first, `${label} ${key} first values`);
  }
}

/** Asserts `fn` throws a one-line CheckpointError naming `file` whose message matches `re`. */
function assertCheckpointError(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

const TEACHERS = ["cifar100/resnet20", "cifar100/resnet32", "cifar100/resnet56", "cifar10/resnet20"];
TEACHERS.push("cifar10/resnet32", "cifar10/resnet56");

for (const name of TEACHERS) {
  Deno.test({
    name: `pth: shared teacher ${name} loads with every value equal to PyTorch's`,
    ignore: !hasShared(),
    fn: async () => {
      const ckpt = await loadPth(new URL(`teachers/${name}.pth`, SHARED_DIR).pathname);
      if (name.startsWith("cifar100/")) {
        assert.equal(ckpt.format, "state_dict");
      } else {
        assert.equal(ckpt.format, "module:ResNet");
        assert.equal(ckpt.moduleClass, "models.resnet.ResNet");
      }
      assertMatchesStats(ckpt.stateDict, teacherStats[name], name);
    },
  });
}

Deno.test("pth: {'model': sd, 'epoch': 3, ...} (protocol 2) keeps the extras", () => {
  const c = readCheckpoint(fixtureBytes("resnet8_wrapped_model.pth"), "w.pth");
  assert.equal(c.format, "wrapped:model");
  assert.equal(c.strippedPrefix, undefined);
  assert.equal(c.extra.epoch, 3);
  assert.equal(c.extra.best_acc, 91.25);
  const opt = c.extra.optimizer as { param_groups: { lr: number; momentum: number }[] };
  assert.equal(opt.param_groups[0].lr, 0.05);
  assert.equal(opt.param_groups[0].momentum, 0.9);
  assertMatchesStats(c.stateDict, resnet8Stats, "wrapped_model");
});

Deno.test("pth: {'state_dict': DataParallel keys} at pickle protocol 4 loses the module. prefix", () => {
  const c = readCheckpoint(fixtureBytes("resnet8_dataparallel_p4.pth"), "dp.pth");
  assert.equal(c.format, "wrapped:state_dict");
  assert.equal(c.strippedPrefix, "module.");
  assert.deepEqual(c.extra, { arch: "resnet8" });
  assertMatchesStats(c.stateDict, resnet8Stats, "dataparallel_p4");
});

Deno.test("pth: a whole pickled nn.Module gives its state_dict()", () => {
  const c = readCheckpoint(fixtureBytes("resnet8_module.pth"), "m.pth");
  assert.equal(c.format, "module:ResNet");
  assert.equal(c.moduleClass, "cifar_models.ResNet");
  assertMatchesStats(c.stateDict, resnet8Stats, "module");
});

Deno.test("pth: {'net': DataParallel(module)} with a numpy scalar beside it", async () => {
  const c = await loadPth(new URL("./fixtures/pth/resnet8_net_dataparallel_module.pth", import.meta.url));
  assert.equal(c.format, "wrapped:net");
  assert.equal(c.moduleClass, "torch.nn.parallel.data_parallel.DataParallel");
  assert.equal(c.strippedPrefix, "module.");
  assert.deepEqual(c.extra, { acc: 0.875, epoch: 12 });
  assertMatchesStats(c.stateDict, resnet8Stats, "net_dataparallel_module");
});

Deno.test("pth: views, strides, shared storages and float64/float16/bfloat16/int64 read exactly", () => {
  const c = readCheckpoint(fixtureBytes("views_dtypes.pth"), "v.pth");
  assert.equal(c.format, "state_dict");
  const names = [...expected.tensors.keys()].filter((k) => k.startsWith("views_dtypes/"));
  assert.equal(names.length, 12);
  assert.deepEqual([...c.stateDict.keys()], names.map((n) => n.slice("views_dtypes/".length)));
  for (const name of names) {
    const want = expected.tensors.get(name)!;
    const got = c.stateDict.get(name.slice("views_dtypes/".length))!;
    assert.deepEqual(got.shape, viewShapes[name.slice("views_dtypes/".length)], name);
    assert.equal(got.dtype, want.dtype, name);
    assert.deepEqual([...got.data], [...want.data], name);
  }
  // The large int64 survives as a number (2^40 is exact in float64).
  assert.equal(c.stateDict.get("long")!.data[2], 2 ** 40);
});

Deno.test("pth: legacy (pre-1.6) files are refused with how to re-save them", () => {
  assertCheckpointError(
    () => readCheckpoint(fixtureBytes("legacy.pth"), "old.pth"),
    "old.pth",
    /legacy \(pre-1\.6, non-zip\) torch\.save format, which is not supported; re-save it with torch >= 1\.6: torch\.save\(/,
  );
});

Deno.test("pth: a TorchScript archive is named as such", () => {
  assertCheckpointError(
    () => readCheckpoint(fixtureBytes("scripted.pt"), "s.pt"),
    "s.pt",
    /a TorchScript archive \(torch\.jit\.save\)/,
  );
});

Deno.test("pth bad input: empty file", () => {
  assertCheckpointError(
    () => readCheckpoint(new Uint8Array(0), "e.pth"),
    "e.pth",
    /^e\.pth: the file is empty$/,
  );
});

Deno.test("pth bad input: missing file", async () => {
  await assert.rejects(() => loadPth(fixturePath("no_such.pth")), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /no_such\.pth: cannot read the file \(no such file\)$/);
    return true;
  });
});

Deno.test("pth bad input: truncated archive", () => {
  const bytes = fixtureBytes("resnet8_wrapped_model.pth");
  for (const keep of [100, bytes.length >> 1, bytes.length - 30]) {
    assertCheckpointError(
      () => readCheckpoint(bytes.subarray(0, keep), "cut.pth"),
      "cut.pth",
      /not a readable zip archive: .*(truncated|damaged)/,
    );
  }
});

Deno.test("pth bad input: bytes flipped inside data.pkl fail the CRC check", () => {
  const bytes = fixtureBytes("resnet8_wrapped_model.pth").slice();
  const zip = new ZipArchive(bytes);
  const pkl = zip.read("resnet8_wrapped_model/data.pkl");
  const at = pkl.byteOffset + (pkl.length >> 1);
  for (let i = 0; i < 16; i++) bytes[at + i] ^= 0x5a;
  assertCheckpointError(
    () => readCheckpoint(bytes, "flip.pth"),
    "flip.pth",
    /resnet8_wrapped_model\/data\.pkl: entry resnet8_wrapped_model\/data\.pkl fails its CRC-32 check/,
  );
});

/** A zip archive shaped like a checkpoint around `pkl` (and optional storages). */
function checkpointZip(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}): Uint8Array {
  const files: Record<string, Uint8Array> = {
    "archive/data.pkl": pkl,
    "archive/version": new TextEncoder().encode("3\n"),
  };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = v;
  return zipSync(files, { level: 0 });
}

/** Opcode bytes from a mix of numbers and ASCII text. */
function bytesOf(...parts: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else for (const ch of p) out.push(ch.charCodeAt(0));
  }
  return new Uint8Array(out);
}

Deno.test("pth bad input: corrupt pickle bytes behind a valid CRC", () => {
  const good = readCheckpointPickle("resnet8_wrapped_model.pth");
  const bad = good.slice();
  bad[2] = 0xff; // the first opcode after PROTO
  assertCheckpointError(
    () => readCheckpoint(checkpointZip(bad), "bad.pth"),
    "bad.pth",
    /^bad\.pth: archive\/data\.pkl: unknown opcode 0xff at byte 2 \(corrupt pickle\)$/,
  );
  // Garbage in the middle: whatever the parser meets, one line that names the entry.
  const mid = good.slice();
  for (let i = 0; i < 64; i++) mid[(mid.length >> 1) + i] = (i * 37 + 11) & 0xff;
  assertCheckpointError(
    () => readCheckpoint(checkpointZip(mid), "mid.pth"),
    "mid.pth",
    /archive\/data\.pkl: /,
  );
  assertCheckpointError(
    () => readCheckpoint(checkpointZip(good.subarray(0, good.length >> 1)), "half.pth"),
    "half.pth",
    /archive\/data\.pkl: the pickle ends/,
  );
});

function readCheckpointPickle(name: string): Uint8Array {
  const zip = new ZipArchive(fixtureBytes(name));
  return zip.read(`${name.replace(/\.pth$/, "")}/data.pkl`).slice();
}

Deno.test("pth bad input: a pickle calling posix.system / os.system via REDUCE", () => {
  for (const [mod, name] of [["posix", "system"], ["os", "system"], ["builtins", "exec"]]) {
    const evil = bytesOf(0x80, 2, `c${mod}\n${name}\n`, "X", 5, 0, 0, 0, "touch", 0x85, "R", ".");
    const msg = new RegExp(`calls ${mod}\\.${name}, which is not allowed`);
    assertCheckpointError(() => readCheckpoint(checkpointZip(evil), "evil.pth"), "evil.pth", msg);
    // The same bytes as a bare file (not a zip) are refused the same way.
    assertCheckpointError(() => readCheckpoint(evil, "evil.pkl"), "evil.pkl", msg);
  }
});

Deno.test("pth bad input: a zip that is not a checkpoint", () => {
  const zip = zipSync({ "readme.txt": new TextEncoder().encode("hello"), "img/a.png": new Uint8Array(4) });
  assertCheckpointError(
    () => readCheckpoint(zip, "notes.zip"),
    "notes.zip",
    /a zip archive but not a PyTorch checkpoint: no <name>\/data\.pkl entry \(entries: readme\.txt, img\/a\.png\)/,
  );
});

Deno.test("pth bad input: random binary, and random bytes behind a zip signature", () => {
  let s = 12345;
  const random = new Uint8Array(4096).map(() => (s = (s * 1103515245 + 12345) >>> 0) >>> 24);
  random[0] = 0x13;
  assertCheckpointError(
    () => readCheckpoint(random, "r.bin"),
    "r.bin",
    /unrecognised header \(first bytes 13 /,
  );
  const fakeZip = random.slice();
  fakeZip.set([0x50, 0x4b, 3, 4]);
  assertCheckpointError(() => readCheckpoint(fakeZip, "z.pth"), "z.pth", /not a readable zip archive/);
});

Deno.test("pth bad input: a plain pickle that is not a torch.save archive", () => {
  assertCheckpointError(
    () => readCheckpoint(bytesOf(0x80, 2, "}", "."), "p.pkl"),
    "p.pkl",
    /a plain pickle, not a PyTorch checkpoint/,
  );
});

// A one-tensor state dict {"w": FloatStorage "0", shape (2,)} as torch writes it.
const oneTensorPickle = (storageOffset: number, size: number) =>
  bytesOf(
    0x80,
    2,
    "ccollections\nOrderedDict\n",
    ")R",
    "X",
    1,
    0,
    0,
    0,
    "w",
    "ctorch._utils\n_rebuild_tensor_v2\n",
    "((",
    "X",
    7,
    0,
    0,
    0,
    "storage",
    "ctorch\nFloatStorage\n",
    "X",
    1,
    0,
    0,
    0,
    "0",
    "X",
    3,
    0,
    0,
    0,
    "cpu",
    "K",
    2,
    "tQ",
    "K",
    storageOffset,
    "K",
    size,
    0x85,
    "K",
    1,
    0x85,
    0x89,
    "ccollections\nOrderedDict\n",
    ")R",
    "tR",
    "s",
    ".",
  );

Deno.test("pth: a hand-made one-tensor checkpoint reads, and its damage is named", () => {
  const storage = new Uint8Array(new Float32Array([1.5, -2]).buffer);
  const ok = readCheckpoint(checkpointZip(oneTensorPickle(0, 2), { "0": storage }), "one.pth");
  assert.deepEqual([...ok.stateDict.get("w")!.data], [1.5, -2]);
  assertCheckpointError(
    () => readCheckpoint(checkpointZip(oneTensorPickle(0, 2)), "nostorage.pth"),
    "nostorage.pth",
    /tensor w: its storage archive\/data\/0 is missing from the archive/,
  );
  assertCheckpointError(
    () => readCheckpoint(checkpointZip(oneTensorPickle(1, 2), { "0": storage }), "past.pth"),
    "past.pth",
    /tensor w: reads element 2 of storage 0, which holds 2 float32 elements/,
  );
});

Deno.test("pth: a dict without any state dict says what it holds", () => {
  const pkl = bytesOf(0x80, 2, "}", "X", 5, 0, 0, 0, "epoch", "K", 3, "s", ".");
  assertCheckpointError(
    () => readCheckpoint(checkpointZip(pkl), "nosd.pth"),
    "nosd.pth",
    /holds no state dict: the saved object is a dict with keys epoch/,
  );
});

Deno.test("pth: a wrapper inside a wrapper, {'model': {'state_dict': sd}}", () => {
  const storage = new Uint8Array(new Float32Array([1.5, -2]).buffer);
  const sd = oneTensorPickle(0, 2);
  // Wrap the pickled OrderedDict: {"model": {"state_dict": <sd>}, "epoch": 9}.
  const body = sd.subarray(2, sd.length - 1);
  const pkl = bytesOf(0x80, 2, "}", "X", 5, 0, 0, 0, "model", "}", "X", 10, 0, 0, 0, "state_dict");
  const tail = bytesOf("s", "s", "X", 5, 0, 0, 0, "epoch", "K", 9, "s", ".");
  const bytes = new Uint8Array([...pkl, ...body, ...tail]);
  const c = readCheckpoint(checkpointZip(bytes, { "0": storage }), "nested.pth");
  assert.equal(c.format, "wrapped:model.state_dict");
  assert.deepEqual(c.extra, { epoch: 9 });
  assert.deepEqual([...c.stateDict.get("w")!.data], [1.5, -2]);
});
