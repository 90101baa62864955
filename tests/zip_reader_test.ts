import assert from "node:assert/strict";
import { zipSync } from "../lib/deps.ts";
import { crc32, looksLikeZip, ZipArchive } from "../convert/zip_reader.ts";

const text = (s: string) => new TextEncoder().encode(s);
const payload = text("the quick brown fox ".repeat(200));

Deno.test("zip: CRC-32 of the standard check string", () => {
  assert.equal(crc32(text("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

Deno.test("zip: stored and deflated entries read back identically", () => {
  const stored = new ZipArchive(zipSync({ "a/b.txt": payload, "a/empty": new Uint8Array(0) }, { level: 0 }));
  const deflated = new ZipArchive(zipSync({ "a/b.txt": payload }, { level: 9 }));
  assert.deepEqual(stored.names(), ["a/b.txt", "a/empty"]);
  assert.equal(stored.entry("a/b.txt")!.method, 0);
  assert.equal(deflated.entry("a/b.txt")!.method, 8);
  assert.ok(deflated.entry("a/b.txt")!.compressedSize < payload.length);
  assert.deepEqual(stored.read("a/b.txt"), payload);
  assert.deepEqual(deflated.read("a/b.txt"), payload);
  assert.equal(stored.read("a/empty").length, 0);
  assert.throws(() => stored.read("nope"), /the archive has no entry nope/);
});

Deno.test("zip: a damaged entry fails its CRC check, a cut one says truncated", () => {
  const zip = zipSync({ "x.bin": payload }, { level: 0 });
  const bad = zip.slice();
  bad[100] ^= 1;
  assert.throws(() => new ZipArchive(bad).read("x.bin"), /entry x\.bin fails its CRC-32 check/);
  assert.throws(() => new ZipArchive(zip.subarray(0, 2000)), /no end-of-central-directory record/);
  // Keep the directory but drop the data: the entry runs past the end of the file.
  const archive = new ZipArchive(zip);
  const e = archive.entry("x.bin")!;
  const dataStart = e.headerOffset + 30 + "x.bin".length;
  const dirSize = new DataView(zip.buffer, zip.byteOffset).getUint32(zip.length - 22 + 12, true);
  const cut = new Uint8Array([
    ...zip.subarray(0, dataStart + 10),
    ...zip.subarray(zip.length - 22 - dirSize),
  ]);
  // Re-point the end record at the moved directory.
  new DataView(cut.buffer).setUint32(cut.length - 22 + 16, cut.length - 22 - dirSize, true);
  assert.throws(
    () => new ZipArchive(cut).read("x.bin"),
    /ends at byte \d+ but the file has \d+ bytes \(truncated/,
  );
});

Deno.test("zip: ZIP64 end-of-directory records are followed", () => {
  const zip = zipSync({ "w/data.pkl": payload, "w/version": text("3\n") }, { level: 0 });
  const eocd = zip.length - 22;
  const src = new DataView(zip.buffer, zip.byteOffset);
  const count = src.getUint16(eocd + 10, true);
  const size = src.getUint32(eocd + 12, true);
  const offset = src.getUint32(eocd + 16, true);
  const out = new Uint8Array(eocd + 56 + 20 + 22);
  out.set(zip.subarray(0, eocd));
  const v = new DataView(out.buffer);
  const z64 = eocd;
  v.setUint32(z64, 0x06064b50, true);
  v.setBigUint64(z64 + 4, 44n, true);
  v.setBigUint64(z64 + 24, BigInt(count), true);
  v.setBigUint64(z64 + 32, BigInt(count), true);
  v.setBigUint64(z64 + 40, BigInt(size), true);
  v.setBigUint64(z64 + 48, BigInt(offset), true);
  const loc = z64 + 56;
  v.setUint32(loc, 0x07064b50, true);
  v.setBigUint64(loc + 8, BigInt(z64), true);
  v.setUint32(loc + 16, 1, true);
  const end = loc + 20;
  v.setUint32(end, 0x06054b50, true);
  v.setUint16(end + 8, 0xffff, true);
  v.setUint16(end + 10, 0xffff, true);
  v.setUint32(end + 12, 0xffffffff, true);
  v.setUint32(end + 16, 0xffffffff, true);
  const archive = new ZipArchive(out);
  assert.deepEqual(archive.names(), ["w/data.pkl", "w/version"]);
  assert.deepEqual(archive.read("w/data.pkl"), payload);
  // Without the locator the saturated record cannot be resolved.
  const noLocator = out.slice();
  noLocator[loc] = 0;
  assert.throws(() => new ZipArchive(noLocator), /ZIP64 archive without its ZIP64 locator/);
});

Deno.test("zip: signature sniffing", () => {
  assert.ok(looksLikeZip(zipSync({ a: new Uint8Array(1) })));
  assert.ok(looksLikeZip(zipSync({})));
  assert.ok(!looksLikeZip(new Uint8Array([0x80, 2, 0x7d, 0x2e])));
  assert.ok(!looksLikeZip(new Uint8Array(0)));
});
