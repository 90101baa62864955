import assert from "node:assert/strict";
import { gunzip, gzip, isGzip, readTar, writeTar } from "../lib/data/archive.ts";
import { DataError } from "../lib/data/dataset.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("writeTar/readTar round trip keeps names and contents, including empty and block-sized files", () => {
  const entries = [
    { name: "dir/a.txt", data: enc.encode("hello") },
    { name: "dir/empty", data: new Uint8Array(0) },
    { name: "block.bin", data: Uint8Array.from({ length: 512 }, (_, i) => i & 255) },
    { name: "odd.bin", data: Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255) },
  ];
  const files = readTar(writeTar(entries), "mem.tar");
  assert.deepEqual([...files.keys()], entries.map((e) => e.name));
  for (const e of entries) assert.deepEqual(files.get(e.name), e.data);
});

for (const format of ["gnu", "pax", "ustar"]) {
  Deno.test(`readTar reads a ${format} archive made by the system tar (directories, ./ prefixes, long paths)`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const long = "a".repeat(60) + "/" + "b".repeat(60);
      await Deno.mkdir(`${dir}/src/${long}`, { recursive: true });
      await Deno.writeTextFile(`${dir}/src/top.txt`, "top");
      await Deno.writeTextFile(`${dir}/src/${long}/deep.txt`, "deep");
      const out = await new Deno.Command("tar", {
        args: [`--format=${format}`, "-czf", `${dir}/x.tar.gz`, "-C", `${dir}/src`, "."],
      }).output();
      assert.equal(out.code, 0, dec.decode(out.stderr));
      const tgz = await Deno.readFile(`${dir}/x.tar.gz`);
      assert.ok(isGzip(tgz));
      const files = readTar(gunzip(tgz, "x.tar.gz"), "x.tar.gz");
      assert.equal(dec.decode(files.get("top.txt")), "top");
      assert.equal(dec.decode(files.get(`${long}/deep.txt`)), "deep");
      assert.equal(files.size, 2, "directories are not listed as files");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("readTar: damaged header and truncated data are DataErrors naming the archive", () => {
  const tar = writeTar([{ name: "f.bin", data: new Uint8Array(2000) }]);
  const damaged = tar.slice();
  damaged[3] ^= 0xff;
  assert.throws(
    () => readTar(damaged, "bad.tar"),
    (e) => e instanceof DataError && /^bad\.tar: damaged tar header/.test(e.message),
  );
  assert.throws(
    () => readTar(tar.subarray(0, 1024), "cut.tar"),
    (e) => e instanceof DataError && /^cut\.tar: truncated tar archive/.test(e.message),
  );
});

Deno.test("gunzip: round trip, non-gzip and corrupt data name the file", () => {
  const data = Uint8Array.from({ length: 5000 }, (_, i) => i % 13);
  assert.deepEqual(gunzip(gzip(data), "ok.gz"), data);
  assert.throws(() => gunzip(data, "plain.bin"), /^DataError: plain\.bin: not a gzip file$/);
  const broken = gzip(data).slice(0, 30);
  assert.throws(
    () => gunzip(broken, "cut.gz"),
    (e) => e instanceof DataError && /^cut\.gz: corrupt gzip data/.test(e.message),
  );
});
