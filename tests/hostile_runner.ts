/**
 * Subprocess of tests/hostile_files_test.ts: reads ONE untrusted file with one reader and prints
 * one JSON line `{ ok, error, peakRssMb, ms }`, so the test can bound its time and resident memory
 * (the peak RSS of this process, from /proc/self/status) without risking its own.
 *
 * Usage: deno run -A tests/hostile_runner.ts <reader> <file>
 * @module
 */
import { unpickle } from "../convert/pickle.ts";
import { readCheckpoint } from "../convert/pth.ts";
import { torchUnpickleOptions } from "../convert/torch_pickle.ts";
import { ZipArchive } from "../convert/zip_reader.ts";
import { importOnnx } from "../convert/onnx_import.ts";
import { decodePngImage } from "../lib/data/png_folder.ts";
import { parseIdx } from "../lib/data/idx.ts";
import { gunzip, readTar } from "../lib/data/archive.ts";
import { decodeSafetensors } from "../lib/safetensors.ts";
import { CIFAR_SPECS, parseCifarRecords } from "../lib/data/cifar.ts";

const [reader, file] = Deno.args;

const READERS: Record<string, (bytes: Uint8Array, file: string) => unknown> = {
  pth: (b, f) => readCheckpoint(b, f),
  pickle: (b) => unpickle(b, torchUnpickleOptions()),
  zip: (b) => {
    const z = new ZipArchive(b);
    for (const n of z.names()) z.read(n);
  },
  onnx: (b, f) => importOnnx(b, f),
  png: (b, f) => decodePngImage(b, f),
  idx: (b, f) => parseIdx(b, f),
  tar: (b, f) => readTar(b[0] === 0x1f ? gunzip(b, f) : b, f),
  safetensors: (b, f) => decodeSafetensors(b, f),
  cifar: (b, f) => parseCifarRecords([{ bytes: b, source: f }], CIFAR_SPECS.cifar10),
};

function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return Deno.memoryUsage().rss / 2 ** 20;
}

const t0 = performance.now();
let error: string | null = null;
try {
  READERS[reader](Deno.readFileSync(file), file);
} catch (e) {
  error = e instanceof Error ? e.message : String(e);
}
console.log(
  JSON.stringify({ ok: error === null, error, peakRssMb: peakRssMb(), ms: performance.now() - t0 }),
);
