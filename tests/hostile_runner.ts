/**
 * Subprocess of tests/hostile_files_test.ts: reads untrusted files, each with one reader, and
 * prints one JSON line per file `{ file, ok, error, peakRssMb, ms }`, so the test can bound time
 * and resident memory (the peak RSS of this process, reset before each file) without risking
 * its own.
 *
 * Usage: deno run -A --v8-flags=--expose-gc tests/hostile_runner.ts <reader>:<file> ...
 * @module
 */
import { withFileName } from "../convert/checkpoint_error.ts";
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
import { peakRssMb as peakRss } from "../lib/peak_memory.ts";

const READERS: Record<string, (bytes: Uint8Array, file: string) => unknown> = {
  pth: (b, f) => readCheckpoint(b, f),
  // These two throw plain errors: their callers add the file name, as readCheckpoint does.
  pickle: (b, f) => withFileName(f, "", () => unpickle(b, torchUnpickleOptions())),
  zip: (b, f) =>
    withFileName(f, "", () => {
      const z = new ZipArchive(b);
      for (const n of z.names()) z.read(n);
    }),
  onnx: (b, f) => importOnnx(b, f),
  png: (b, f) => decodePngImage(b, f),
  idx: (b, f) => parseIdx(b, f),
  tar: (b, f) => readTar(b[0] === 0x1f ? gunzip(b, f) : b, f),
  safetensors: (b, f) => decodeSafetensors(b, f),
  cifar: (b, f) => parseCifarRecords([{ bytes: b, source: f }], CIFAR_SPECS.cifar10),
};

/** Peak resident memory since the last reset, MiB (current RSS where /proc is missing). */
function peakRssMb(): number {
  return peakRss() ?? Deno.memoryUsage().rss / 2 ** 20;
}

/** Frees the previous file's garbage and resets the peak (Linux clear_refs "5"). */
async function resetPeak(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 5));
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
  } catch { /* the peak then covers all files so far: a stricter bound */ }
}

// Each argument is <reader>:<file>; one JSON line per file, after a "start" line so a parent
// that has to kill this process knows which file hung.
for (const arg of Deno.args) {
  const i = arg.indexOf(":");
  const reader = arg.slice(0, i), file = arg.slice(i + 1);
  await resetPeak();
  console.log(JSON.stringify({ start: file }));
  const t0 = performance.now();
  let error: string | null = null;
  try {
    const read = READERS[reader];
    if (!read) throw new Error(`unknown reader ${reader}`);
    read(Deno.readFileSync(file), file);
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ file, reader, ok: error === null, error, peakRssMb: peakRssMb(), ms }));
}
