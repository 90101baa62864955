/**
 * Peak resident memory of a paper-default distillation run: `cli.ts distill` with its defaults
 * (CIFAR-100, resnet56 teacher -> resnet20 student, batch 64, the oracle settings of
 * lib/config.ts, the teacher's plain and oracle test check) on a full-size CIFAR-100 (50,000
 * train + 10,000 test 32x32 images, synthesised in the official binary format in a temporary
 * folder, since the real one need not be here), stopped after `--steps` training steps through
 * `--subset` (the whole data set stays loaded; the epoch ends with the evaluation over all test
 * images). The run's peak is read from the child's /proc/<pid>/status (VmHWM, polled), together
 * with the last line the run printed before the peak was reached.
 *
 *   deno run -A bench/memory.ts [--steps 20] [--limit-mb 2048] [--no-teacher-test] [--json]
 *
 * Exits 1 when the run fails or its peak is above `--limit-mb` (tests/memory_test.ts runs it).
 * The teacher is the paper's resnet56 from `../shared` when present (laid out as the downloaded
 * checkpoint, so the default `--teacher resnet56` resolves it), else a seeded resnet56 exported
 * as ONNX (same network and size).
 * @module
 */

import * as path from "node:path";
import { exportOnnx } from "../convert/onnx_export.ts";
import { scriptSettings } from "../lib/cli_args.ts";
import { bool, type ConfigOf, int, text } from "../lib/config_spec.ts";
import { writeCifarFolder } from "../lib/data/cifar.ts";
import type { ImageSplit } from "../lib/data/dataset.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { peakRssMb } from "../lib/peak_memory.ts";

const FIELDS = {
  steps: int("run", "training steps of batch 64 before the epoch ends (then the full test evaluation)", 20, {
    min: 1,
  }),
  epochs: int("optimiser", "epochs of --steps steps each, each ending with the test evaluation", 1, {
    min: 1,
  }),
  train: int("data", "training images", 50_000, { min: 64 }),
  test: int("data", "test images", 10_000, { min: 1 }),
  teacherTest: bool("teacher", "the run's teacher check (plain and oracle, over every test image)", true),
  engine: text("engine", "training engine", "onnxruntime"),
  limitMb: int("run", "fail (exit 1) when the peak is above this many MiB", 2048, { min: 1 }),
  json: bool("run", "print the report as one JSON line", false),
  trace: bool(
    "run",
    "print the peak each time it passes a multiple of 50 MiB, with the line it followed",
    false,
  ),
  keep: bool("run", "keep the temporary folder (data set, run folder) and say where", false),
};
const SPEC = {
  summary: "peak resident memory of a paper-default distill run on full-size CIFAR-100",
  example: "deno run -A bench/memory.ts --steps 20",
  fields: FIELDS,
  usage: "deno run -A bench/memory.ts",
};

/** What one measured run reports. */
export interface MemoryReport {
  peak_rss_mb: number;
  limit_mb: number;
  /** The run's last printed line before its peak was reached. */
  peak_after: string;
  seconds: number;
  steps: number;
  epochs: number;
  /** The peak when each epoch's summary line (after its test evaluation) appeared. */
  peak_by_epoch_mb: number[];
  train_images: number;
  test_images: number;
  teacher: string;
  teacher_test: boolean;
  engine: string;
  exit_code: number;
  /** The run's last lines when it failed. */
  error?: string;
}

/**
 * Writes a CIFAR-100 binary folder (coarse label, fine label, 3072 pixel bytes per record) of
 * seeded image-like noise.
 */
async function writeCifar100(folder: string, train: number, test: number): Promise<void> {
  let s = 0x9e3779b9;
  const split = (n: number, offset: number): ImageSplit => {
    const images = new Uint8Array(n * 3072);
    const words = new Uint32Array(images.buffer);
    for (let i = 0; i < words.length; i++) { // xorshift32: image-like noise, cheap and seeded
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[i] = s >>> 0;
    }
    return { count: n, images, labels: Int32Array.from({ length: n }, (_, r) => (r + offset) % 100) };
  };
  await writeCifarFolder("cifar100", folder, { train: split(train, 0), test: split(test, 7) });
  const names = Array.from({ length: 20 }, (_, i) => `superclass_${i}`).join("\n") + "\n";
  await Deno.writeTextFile(path.join(folder, "coarse_label_names.txt"), names);
}

/** Puts the teacher where the default `--teacher resnet56` finds it; returns how it is named. */
async function placeTeacher(dir: string): Promise<{ flag: string[]; description: string }> {
  const shared = new URL("../../shared/teachers/cifar100/resnet56.pth", import.meta.url);
  try {
    const bytes = await Deno.readFile(shared);
    await Deno.mkdir(path.join(dir, "weights"), { recursive: true });
    await Deno.writeFile(path.join(dir, "weights", "cifar100_resnet56.pth"), bytes);
    return { flag: [], description: "resnet56 (the paper's checkpoint, default --teacher)" };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const g = buildModel("resnet56", { numClasses: 100 });
  const file = path.join(dir, "resnet56_seeded.onnx");
  await Deno.writeFile(file, exportOnnx(g, initStateDict(g, 1), { imageSize: 32, dataset: "cifar100" }));
  return { flag: ["--teacher", file], description: "resnet56 (seeded weights as ONNX; ../shared is absent)" };
}

/** Runs one measured distill run and reports its peak. */
export async function measureDistillMemory(o: ConfigOf<typeof FIELDS>): Promise<MemoryReport> {
  const tmp = await Deno.makeTempDir({ prefix: "oracle_kd_memory_" });
  try {
    await writeCifar100(path.join(tmp, "data", "cifar-100-binary"), o.train, o.test);
    const teacher = await placeTeacher(tmp);
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const args = [
      "run",
      "-A",
      cli,
      "distill",
      "--data-dir",
      path.join(tmp, "data"),
      "--no-download",
      ...teacher.flag,
      "--epochs",
      String(o.epochs),
      "--subset",
      String(o.steps * 64),
      "--out",
      path.join(tmp, "run"),
      "--engine",
      o.engine,
      ...(o.teacherTest ? [] : ["--no-test-teacher"]),
    ];
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), { args, cwd: tmp, stdout: "piped", stderr: "piped" })
      .spawn();
    const lines: string[] = [];
    const byEpoch: number[] = [];
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      let rest = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split(/\r?\n|\r/);
        rest = parts.pop() ?? "";
        for (const p of parts) {
          if (!p.trim()) continue;
          lines.push(p.trim());
          if (/^epoch \d+:/.test(p.trim())) byEpoch.push(Number((peakRssMb(child.pid) ?? peak).toFixed(1)));
        }
      }
      if (rest.trim()) lines.push(rest.trim());
    };
    let peak = 0, peakAfter = "(start)";
    const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
    let done = false;
    const status = child.status.then((s) => {
      done = true;
      return s;
    });
    while (!done) {
      const hwm = peakRssMb(child.pid);
      if (hwm !== null && hwm > peak) {
        if (o.trace && Math.floor(hwm / 50) > Math.floor(peak / 50)) {
          console.error(
            `${((performance.now() - t0) / 1000).toFixed(1)} s ${hwm.toFixed(0)} MiB after: ${lines.at(-1)}`,
          );
        }
        peak = hwm;
        peakAfter = lines.at(-1) ?? "(start)";
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const { code } = await status;
    await reading;
    const report: MemoryReport = {
      peak_rss_mb: Number(peak.toFixed(1)),
      limit_mb: o.limitMb,
      peak_after: peakAfter,
      seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
      steps: o.steps,
      epochs: o.epochs,
      peak_by_epoch_mb: byEpoch,
      train_images: o.train,
      test_images: o.test,
      teacher: teacher.description,
      teacher_test: o.teacherTest,
      engine: o.engine,
      exit_code: code,
    };
    if (code !== 0) report.error = lines.slice(-5).join(" | ");
    return report;
  } finally {
    if (o.keep) console.error(`kept ${tmp}`);
    else await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  const o = await scriptSettings("memory", SPEC);
  const r = await measureDistillMemory(o);
  if (o.json) console.log(JSON.stringify(r));
  else {
    console.log(
      `paper-default distill (${r.train_images} train / ${r.test_images} test images, teacher ${r.teacher}, ` +
        `${r.teacher_test ? "teacher check, " : ""}${r.epochs} epoch(s) of ${r.steps} steps, each then the ` +
        `test evaluation; ${r.engine}): ` +
        `peak ${r.peak_rss_mb.toFixed(0)} MiB resident (limit ${r.limit_mb} MiB) in ${r.seconds} s` +
        `\npeak reached after: ${r.peak_after}` +
        `\npeak after each epoch: ${r.peak_by_epoch_mb.map((v) => v.toFixed(0)).join(", ")} MiB` +
        (r.error ? `\nrun failed (exit ${r.exit_code}): ${r.error}` : ""),
    );
  }
  Deno.exit(r.exit_code === 0 && r.peak_rss_mb <= r.limit_mb ? 0 : 1);
}
