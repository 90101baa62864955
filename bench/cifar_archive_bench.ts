/**
 * Reading a full-size CIFAR-100 binary archive: builds one in a temporary folder (50000 train +
 * 10000 test records of random pixels, the official layout), then reports how long checksumming
 * and reading it take and the process's peak memory (Linux VmHWM) once the dataset and a
 * training loader exist.
 *
 * Run: `deno run -A bench/cifar_archive_bench.ts`
 * @module
 */

import { gzip, writeTar } from "../lib/data/archive.ts";
import { fileDigest } from "../lib/data/checksum.ts";
import { readCifarArchive } from "../lib/data/cifar.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import { peakRssMb } from "../lib/peak_memory.ts";

function peakRssMiB(): string {
  return peakRssMb()?.toFixed(0) ?? "n/a";
}

function records(n: number): Uint8Array {
  const out = new Uint8Array(n * 3074);
  const chunk = new Uint8Array(65536);
  for (let off = 0; off < out.length; off += chunk.length) {
    crypto.getRandomValues(chunk);
    out.set(chunk.subarray(0, Math.min(chunk.length, out.length - off)), off);
  }
  for (let i = 0; i < n; i++) {
    out[i * 3074] = i % 20; // coarse
    out[i * 3074 + 1] = i % 100; // fine
  }
  return out;
}

async function build(path: string): Promise<void> {
  const names = Array.from({ length: 100 }, (_, i) => `class_${i}`).join("\n") + "\n";
  const tar = writeTar([
    { name: "cifar-100-binary/train.bin", data: records(50000) },
    { name: "cifar-100-binary/test.bin", data: records(10000) },
    { name: "cifar-100-binary/fine_label_names.txt", data: new TextEncoder().encode(names) },
  ]);
  await Deno.writeFile(path, gzip(tar));
}

if (Deno.args[0] === "--build") {
  await build(Deno.args[1]);
  Deno.exit(0);
}

const dir = await Deno.makeTempDir();
try {
  const path = `${dir}/cifar-100-binary.tar.gz`;
  // Built in a child process so that its memory does not count in this one's peak.
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--build", path],
  }).output();
  if (child.code !== 0) throw new Error(new TextDecoder().decode(child.stderr));
  console.log(
    `archive: ${
      ((await Deno.stat(path)).size / 2 ** 20).toFixed(0)
    } MiB, peak RSS before reading ${peakRssMiB()} MiB`,
  );

  let t = performance.now();
  await fileDigest(path, "md5");
  console.log(`md5 of the archive: ${((performance.now() - t) / 1000).toFixed(2)} s`);

  t = performance.now();
  const ds = await readCifarArchive("cifar100", path, { verify: false });
  console.log(
    `readCifarArchive: ${((performance.now() - t) / 1000).toFixed(2)} s, ` +
      `${ds.train.count} + ${ds.test.count} images, pixels ${
        ((ds.train.images.length + ds.test.images.length) / 2 ** 20).toFixed(0)
      } MiB, peak RSS ${peakRssMiB()} MiB`,
  );

  const loader = new BatchLoader(ds, "train", { batchSize: 64 });
  for (let i = 0; i < 20; i++) await loader.next();
  await loader.close();
  console.log(`peak RSS after 20 training batches (worker loader): ${peakRssMiB()} MiB`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
