/**
 * Ctrl-C on the paper's configuration (resnet56 teacher -> resnet20 student, batch 64,
 * onnxruntime engine) on synthetic CIFAR-100-shaped data written in CIFAR-100's binary format
 * (so nothing is downloaded): SIGINT to a `deno run cli.ts distill` subprocess mid-epoch must end
 * it within about one step plus the save, with a whole, resumable checkpoint; a resumed run
 * stopped with two quick Ctrl-Cs leaves a whole checkpoint, no temporary file and no lock.
 * The measured latencies are printed.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { exportOnnx } from "../convert/onnx_export.ts";
import { writeFileAtomic } from "../lib/atomic_file.ts";
import { loadCheckpoint } from "../lib/checkpoint.ts";
import { writeCifarFolder } from "../lib/data/cifar.ts";
import type { ImageSplit } from "../lib/data/dataset.ts";
import { createCtrlC } from "../lib/interrupt.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { Rng } from "../lib/rng.ts";
import { CLI } from "./cli_utils.ts";

const STEPS_PER_EPOCH = 40;

/** cifar-100-binary/{train,test}.bin and fine_label_names.txt with seeded random pixels. */
async function writeCifar100Like(dir: string, train: number, test: number): Promise<void> {
  const rng = new Rng(7);
  const split = (n: number): ImageSplit => ({
    count: n,
    images: Uint8Array.from({ length: n * 3072 }, () => rng.nextUint32() >>> 24),
    labels: Int32Array.from({ length: n }, (_, i) => i % 100),
  });
  await writeCifarFolder("cifar100", path.join(dir, "cifar-100-binary"), {
    train: split(train),
    test: split(test),
  });
}

/** A running CLI subprocess whose stdout and stderr are collected. */
function spawn(args: string[], cwd: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) text += dec.decode(c, { stream: true });
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]);
  return { child, output: () => text, done };
}

async function until(what: string, cond: () => Promise<boolean> | boolean, child: Deno.ChildProcess) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > 300_000) {
      child.kill("SIGKILL");
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function mtime(file: string): Promise<number> {
  try {
    return (await Deno.stat(file)).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

Deno.test("Ctrl-C on resnet56 -> resnet20 (batch 64, onnxruntime) stops within about one step with a resumable checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_interrupt_" });
  try {
    await writeCifar100Like(path.join(dir, "data"), STEPS_PER_EPOCH * 64, 256);
    const g = buildModel("resnet56", { numClasses: 100 });
    await Deno.writeFile(
      path.join(dir, "resnet56.onnx"),
      exportOnnx(g, initStateDict(g, 1), { imageSize: 32 }),
    );
    const args = [
      "distill",
      "--data",
      "cifar100",
      "--data-dir",
      "data",
      "--teacher",
      "resnet56.onnx",
      "--student",
      "resnet20",
      "--batch-size",
      "64",
      "--engine",
      "onnxruntime",
      "--epochs",
      "2",
      "--test-teacher",
      "false",
      "--checkpoint-every",
      "2",
      "--out",
      "run",
      "--student-out",
      "run/student.onnx",
    ];
    const ck = path.join(dir, "run", "checkpoint.safetensors");

    // The steady step time: between the 2nd and 3rd periodic checkpoints (steps 4 and 6; the
    // first steps also build the ONNX graphs).
    const run = spawn(args, dir);
    const stamps: number[] = [];
    let last = 0;
    await until("three periodic checkpoints", async () => {
      const m = await mtime(ck);
      if (m !== 0 && m !== last) {
        last = m;
        stamps.push(performance.now());
      }
      return stamps.length >= 3;
    }, run.child);
    const twoSteps = stamps[2] - stamps[1];
    const step = twoSteps / 2;
    await new Promise((r) => setTimeout(r, step / 2)); // in the middle of a step
    const sent = performance.now();
    run.child.kill("SIGINT");
    const status = await run.child.status;
    const latency = performance.now() - sent;
    await run.done;
    // Generous for a loaded 2-core machine: the step under way, the save and the exit, twice
    // over, plus 10 s. Before the fix it ran to the end of the epoch (~35 more steps).
    const bound = 2 * step + 10_000;
    console.log(
      `step ${(step / 1000).toFixed(2)} s (incl. every-2 save); Ctrl-C -> exit ${
        (latency / 1000).toFixed(2)
      } s ` +
        `(bound ${(bound / 1000).toFixed(1)} s)`,
    );
    assert.equal(status.code, 130, run.output());
    assert.ok(latency < bound, `Ctrl-C took ${latency.toFixed(0)} ms, step ${step.toFixed(0)} ms`);
    assert.match(run.output(), /interrupted: checkpoint saved to run\/checkpoint\.safetensors/);
    const saved = await loadCheckpoint<{ epoch: number; batchInEpoch: number }>(ck);
    assert.equal(saved.loop.epoch, 1);
    assert.ok(
      saved.loop.batchInEpoch >= 6 && saved.loop.batchInEpoch < STEPS_PER_EPOCH,
      `stopped at batch ${saved.loop.batchInEpoch}`,
    );

    // Resumable: --resume --out alone picks it up; then two Ctrl-Cs 1.4 s apart (the issue's
    // case: the second may land in the step or the save) still save the step under way and
    // leave a whole checkpoint, no temporary file and no lock.
    const afterFirst = await mtime(ck);
    const resumed = spawn(["distill", "--resume", "--out", "run"], dir);
    await until("the resume", () => /resuming at epoch 1, batch \d+/.test(resumed.output()), resumed.child);
    assert.match(resumed.output(), new RegExp(`resuming at epoch 1, batch ${saved.loop.batchInEpoch} `));
    const before = afterFirst;
    await until(
      "a periodic checkpoint of the resumed run",
      async () => (await mtime(ck)) !== before,
      resumed.child,
    );
    const sent2 = performance.now();
    resumed.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 1400));
    try {
      resumed.child.kill("SIGINT");
    } catch { /* already gone: the step and the save were quicker than 1.4 s */ }
    const status2 = await resumed.child.status;
    const latency2 = performance.now() - sent2;
    await resumed.done;
    console.log(`resumed run: two Ctrl-Cs -> exit ${(latency2 / 1000).toFixed(2)} s after the first`);
    assert.equal(status2.code, 130, resumed.output());
    assert.ok(latency2 < bound + 1400, `two Ctrl-Cs took ${latency2.toFixed(0)} ms`);
    const again = await loadCheckpoint<{ epoch: number; batchInEpoch: number }>(ck);
    assert.ok(
      again.loop.batchInEpoch > saved.loop.batchInEpoch,
      "the resumed run's checkpoint is missing",
    );
    const left = [...Deno.readDirSync(path.join(dir, "run"))].map((e) => e.name);
    assert.deepEqual(left.filter((n) => n.endsWith(".tmp") || n === ".lock"), [], `left: ${left}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Ctrl-C presses: quit at once while setting up; while training stop with a checkpoint, say so on the second, quit on the third once no write is in flight", async () => {
  const log: string[] = [];
  const setup = createCtrlC({
    write: (l) => log.push(l.trim()),
    exit: (c) => log.push(`exit ${c}`),
    listen: false,
  });
  setup.press();
  assert.deepEqual(log, ["interrupted (nothing was trained yet)", "exit 130"]);

  log.length = 0;
  const c = createCtrlC({
    write: (l) => log.push(l.trim()),
    exit: (code) => log.push(`exit ${code}`),
    listen: false,
  });
  c.phase("training");
  c.press();
  assert.ok(c.signal.aborted);
  c.press();
  assert.ok(!log.some((l) => l.startsWith("exit")), log.join("|"));
  const dir = await Deno.makeTempDir();
  try {
    const writing = writeFileAtomic(`${dir}/big.bin`, new Uint8Array(32 << 20));
    c.press(); // a write is in flight: the exit waits for it
    assert.ok(!log.includes("exit 130"));
    await writing;
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(log.at(-1), "exit 130");
    assert.equal((await Deno.stat(`${dir}/big.bin`)).size, 32 << 20);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
