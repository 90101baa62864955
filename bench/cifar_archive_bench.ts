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
import { CIFAR_SPECS, cifarFiles, readCifarArchive } from "../lib/data/cifar.ts";
import type { ImageSplit } from "../lib/data/dataset.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import { peakRssMb } from "../lib/peak_memory.ts";

function peakRssMiB(): string {
  return peakRssMb()?.toFixed(0) ?? "n/a";
}

/** `n` images of random pixels, labels cycling through the 100 classes. */
function split(n: number): ImageSplit {
  const images = new Uint8Array(n * 3072);
  const chunk = new Uint8Array(65536);
  for (let off = 0; off < images.length; off += chunk.length) {
    crypto.getRandomValues(chunk);
    images.set(chunk.subarray(0, Math.min(chunk.length, images.length - off)), off);
  }
  return { count: n, images, labels: Int32Array.from({ length: n }, (_, i) => i % 100) };
}

async function build(path: string): Promise<void> {
  const spec = CIFAR_SPECS.cifar100;
  const [train, test] = [split(50000), split(10000)];
  const files = cifarFiles(spec, { train, test });
  const tar = writeTar([...files].map(([name, data]) => ({ name: `${spec.folder}/${name}`, data })));
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
