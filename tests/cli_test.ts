/**
 * The command line end to end, as a user runs it (subprocesses): convert prints a summary and
 * leaves nothing behind on failure; bad input is one `error:` line without a stack trace;
 * distill refuses a teacher that does not fit the data before training; a run killed after its
 * first epoch (SIGKILL) and one stopped by Ctrl-C (SIGINT) resume to exactly the weights of an
 * uninterrupted run.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { exportOnnx } from "../convert/onnx_export.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { assertOneLineError, CLI, runCli } from "./cli_utils.ts";
import { SHARED_DIR, sharedTest } from "./test_utils.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "okd_cli_" });
}

sharedTest("convert: a .pth teacher to ONNX with a summary; failures leave nothing behind", async () => {
  const dir = await tempDir();
  try {
    const src = new URL("teachers/cifar100/resnet20.pth", SHARED_DIR).pathname;
    const ok = await runCli(["convert", "--from", src, "--out", "t.onnx", "--dataset", "cifar100"], dir);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /resnet20: 3 stages x 3 BasicBlocks/);
    assert.match(ok.stdout, /278,324 trainable/);
    assert.match(ok.stdout, /opset 13/);
    assert.ok((await Deno.stat(path.join(dir, "t.onnx"))).size > 1e6);

    const bytes = await Deno.readFile(src);
    await Deno.writeFile(path.join(dir, "cut.pth"), bytes.subarray(0, bytes.length / 2));
    await Deno.writeFile(path.join(dir, "empty.pth"), new Uint8Array());
    await Deno.writeTextFile(path.join(dir, "notes.pth"), "not a checkpoint at all\n");
    for (
      const [file, why] of [["cut.pth", /cut\.pth: /], ["empty.pth", /empty\.pth: .*empty/], [
        "notes.pth",
        /notes\.pth: /,
      ]] as const
    ) {
      const r = await runCli(["convert", "--from", file, "--out", "x.onnx"], dir);
      assertOneLineError(r, why);
    }
    const mismatch = await runCli(["convert", "--from", src, "--arch", "resnet32", "--out", "x.onnx"], dir);
    assertOneLineError(mismatch, /layer1\.3\.conv1\.weight/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("x.onnx")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("test and distill: bad input is one clear error line", async () => {
  const dir = await tempDir();
  try {
    await Deno.writeTextFile(path.join(dir, "m.onnx"), "hello");
    assertOneLineError(
      await runCli(["test", "--model", "m.onnx", "--data", "synthetic"], dir),
      /m\.onnx: not an ONNX model/,
    );
    assertOneLineError(
      await runCli(["distill", "--reduction", "max"], dir),
      /--reduction must be one of mean, sum; got "max"/,
    );
    assertOneLineError(await runCli(["distill", "--epochs", "0"], dir), /--epochs must be >= 1, got 0/);
    const g = buildModel("resnet8", { numClasses: 10, inChannels: 1 });
    await Deno.writeFile(path.join(dir, "grey.onnx"), exportOnnx(g, initStateDict(g, 0), { imageSize: 28 }));
    assertOneLineError(
      await runCli(["test", "--model", "grey.onnx", "--data", "synthetic"], dir),
      /grey\.onnx: the model's input "input" takes \[N, 1, 28, 28\], but the data has images of \[N, 3, 32, 32\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("distill refuses a teacher whose class count differs from the data's, before training", async () => {
  const dir = await tempDir();
  try {
    const g = buildModel("resnet8", { numClasses: 100 });
    await Deno.writeFile(path.join(dir, "t100.onnx"), exportOnnx(g, initStateDict(g, 0)));
    const r = await runCli(["distill", "--data", "synthetic", "--teacher", "t100.onnx", "--out", "run"], dir);
    assertOneLineError(r, /teacher t100\.onnx has 100 classes but synthetic has 10/);
    await assert.rejects(Deno.stat(path.join(dir, "run")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Distills a resnet8 on a small synthetic subset (4 steps per epoch, 3 epochs). */
function distillArgs(out: string, extra: string[] = []): string[] {
  return [
    "distill",
    "--data",
    "synthetic",
    "--teacher",
    "teacher.onnx",
    "--student",
    "resnet8",
    "--epochs",
    "3",
    "--subset",
    "64",
    "--batch-size",
    "16",
    "--schedule",
    "2",
    "--test-teacher",
    "false",
    "--out",
    out,
    "--student-out",
    `${out}/student.onnx`,
    ...extra,
  ];
}

async function waitFor(file: string, child: Deno.ChildProcess, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      await Deno.stat(file);
      return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`${file} did not appear`);
}

Deno.test("a run killed after its first epoch, or stopped with Ctrl-C, resumes to the uninterrupted weights", async () => {
  const dir = await tempDir();
  try {
    const g = buildModel("resnet8", { numClasses: 10 });
    await Deno.writeFile(path.join(dir, "teacher.onnx"), exportOnnx(g, initStateDict(g, 5)));
    const straight = await runCli(distillArgs("a"), dir);
    assert.equal(straight.code, 0, straight.stderr);
    const want = await Deno.readFile(path.join(dir, "a", "student.onnx"));

    for (const [label, signal] of [["killed", "SIGKILL"], ["ctrl-c", "SIGINT"]] as const) {
      const out = label;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, ...distillArgs(out)],
        cwd: dir,
        stdout: "null",
        stderr: "null",
      }).spawn();
      await waitFor(path.join(dir, out, "checkpoint.safetensors"), child);
      child.kill(signal);
      const status = await child.status;
      assert.ok(!status.success, `${label}: the run should not have completed (exit ${status.code})`);
      await assert.rejects(Deno.stat(path.join(dir, out, "student.onnx")), Deno.errors.NotFound);
      const resumed = await runCli(distillArgs(out, ["--resume"]), dir);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr + resumed.stdout, /resuming at epoch/);
      const got = await Deno.readFile(path.join(dir, out, "student.onnx"));
      // A first-difference check: deepEqual's diff of two 300 KB arrays can take gigabytes.
      const at = got.length === want.length
        ? got.findIndex((v, i) => v !== want[i])
        : Math.min(got.length, want.length);
      assert.equal(
        at,
        -1,
        `${label}: resumed student differs from the uninterrupted one (first at byte ${at})`,
      );
      const metrics = (await Deno.readTextFile(path.join(dir, out, "metrics.jsonl"))).trim().split("\n");
      assert.equal(metrics.length, 3);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
