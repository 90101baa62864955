/**
 * The run folder as the unit of work, through the command line (subprocesses, resnet8 on a
 * small synthetic subset: 4 steps per epoch): `--resume --out DIR` alone continues from
 * DIR/config.json, safe changes are announced and recorded, any other difference is refused in
 * one line before anything is written (the folder's files hashed before and after), a
 * non-empty --out is refused without --overwrite, a lock refuses a second live run but not a
 * dead owner's, outputs are checked writable before training, killed writers' temp files are
 * removed, and a kill -9 with --checkpoint-every 1 loses at most one step.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as os from "node:os";
import * as path from "node:path";
import { exportOnnx } from "../convert/onnx_export.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/checkpoint.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import {
  checkNewRunFolder,
  LOCK_FILE,
  readRunConfig,
  resumeChanges,
  RunFolderError,
  RunLock,
} from "../lib/run_folder.ts";
import { resolveConfig } from "../lib/config.ts";
import { assertOneLineError, CLI, runCli } from "./cli_utils.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "okd_runfolder_" });
  try {
    const g = buildModel("resnet8", { numClasses: 10 });
    await Deno.writeFile(path.join(dir, "teacher.onnx"), exportOnnx(g, initStateDict(g, 5)));
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A full command line for a small run into `out` (its student exported inside it). */
function args(out: string, epochs: number, extra: string[] = []): string[] {
  return [
    "distill",
    "--data",
    "synthetic",
    "--teacher",
    "teacher.onnx",
    "--student",
    "resnet8",
    "--epochs",
    String(epochs),
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

/** SHA-256 of every file under `dir` (relative path -> hex). */
async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = path.join(d, e.name);
      if (e.isDirectory) await walk(p);
      else out[path.relative(dir, p)] = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
    }
  };
  await walk(dir);
  return out;
}

async function sameFile(a: string, b: string, what: string): Promise<void> {
  const [x, y] = [await Deno.readFile(a), await Deno.readFile(b)];
  const at = x.length === y.length ? x.findIndex((v, i) => v !== y[i]) : Math.min(x.length, y.length);
  assert.equal(at, -1, `${what}: ${a} and ${b} differ (first at byte ${at})`);
}

const lines = async (file: string) => (await Deno.readTextFile(file)).trim().split("\n").filter((l) => l);

Deno.test("--resume --out DIR alone continues from DIR/config.json; safe changes are recorded; other changes and a damaged checkpoint are refused without touching a file", async () => {
  await withDir(async (dir) => {
    const straight = await runCli(args("straight", 2), dir);
    assert.equal(straight.code, 0, straight.stderr);
    const first = await runCli(args("run", 1), dir);
    assert.equal(first.code, 0, first.stderr);
    const run = path.join(dir, "run");

    // Unsafe changes: refused in one line listing them, nothing in the folder changes.
    const before = await hashTree(run);
    const refused = await runCli(
      ["distill", "--resume", "--out", "run", "--student", "resnet20", "--lr", "0.1", "--epochs", "2"],
      dir,
    );
    assertOneLineError(
      refused,
      /cannot resume run: --student resnet8 -> resnet20, --lr 0\.05 -> 0\.1 differ from its config\.json \(a resume may change only --epochs, /,
    );
    assert.deepEqual(await hashTree(run), before, "a refused resume changed the run folder");

    // A checkpoint whose metadata is damaged: one line naming the file; nothing changes.
    await Deno.mkdir(path.join(dir, "bad"));
    for await (const e of Deno.readDir(run)) {
      await Deno.copyFile(path.join(run, e.name), path.join(dir, "bad", e.name));
    }
    const ck = await loadCheckpoint(path.join(run, "checkpoint.safetensors"));
    await saveCheckpoint(path.join(dir, "bad", "checkpoint.safetensors"), { ...ck, loop: undefined });
    const badBefore = await hashTree(path.join(dir, "bad"));
    assertOneLineError(
      await runCli(["distill", "--resume", "--out", "bad"], dir),
      /bad\/checkpoint\.safetensors: damaged checkpoint metadata \("loop" is missing\)/,
    );
    assert.deepEqual(
      await hashTree(path.join(dir, "bad")),
      badBefore,
      "a failed resume changed the run folder",
    );

    // Temp files of a killed writer (pid 999999999 does not exist) are removed by the next run.
    const deadTemp = path.join(run, "checkpoint.safetensors.999999999.0123abcd.tmp");
    await Deno.writeTextFile(deadTemp, "half a checkpoint");
    // Safe change (more epochs): announced, recorded, and exactly the uninterrupted 2-epoch run.
    const resumed = await runCli(["distill", "--resume", "--out", "run", "--epochs", "2"], dir);
    assert.equal(resumed.code, 0, resumed.stderr);
    const said = resumed.stdout + resumed.stderr;
    assert.match(said, /resuming at epoch 2, batch 0/);
    assert.match(said, /changed on resume \(recorded in run\/resume_log\.jsonl\): --epochs 1 -> 2/);
    await sameFile(
      path.join(run, "student.onnx"),
      path.join(dir, "straight", "student.onnx"),
      "resumed student",
    );
    assert.equal((await lines(path.join(run, "metrics.jsonl"))).length, 2);
    const log = (await lines(path.join(run, "resume_log.jsonl"))).map((l) => JSON.parse(l));
    assert.equal(log.length, 1);
    assert.deepEqual(log[0].changed, { epochs: { from: 1, to: 2 } });
    assert.deepEqual(log[0].from, { epoch: 2, batch: 0 });
    assert.equal((await readRunConfig(run)).epochs, 2, "config.json keeps the extended epochs");
    await assert.rejects(Deno.stat(deadTemp), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(path.join(run, LOCK_FILE)), Deno.errors.NotFound);

    // Fewer epochs than already done is refused.
    assertOneLineError(
      await runCli(["distill", "--resume", "--out", "run", "--epochs", "1"], dir),
      /cannot resume run with --epochs 1: it has already trained 2 epochs/,
    );
  });
});

Deno.test("a non-empty --out is refused without --overwrite; a lock refuses a live run but not a dead one; two runs at once: one is refused", async () => {
  await withDir(async (dir) => {
    const first = await runCli(args("run", 1), dir);
    assert.equal(first.code, 0, first.stderr);
    const run = path.join(dir, "run");
    const before = await hashTree(run);
    assertOneLineError(
      await runCli(args("run", 1, ["--seed", "1"]), dir),
      /run already holds a run with a checkpoint \(.*\); continue it with --resume --out run, replace it with --overwrite/,
    );
    assert.deepEqual(await hashTree(run), before, "a refused run changed the folder");

    // A live owner (a sleeping process on this host) blocks; once it is gone, it does not.
    const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
    const lock = { pid: sleeper.pid, host: os.hostname(), started: new Date().toISOString() };
    await Deno.writeTextFile(path.join(run, LOCK_FILE), JSON.stringify(lock));
    assertOneLineError(
      await runCli(["distill", "--resume", "--out", "run", "--epochs", "2"], dir),
      new RegExp(`run is in use by another run \\(pid ${sleeper.pid} on `),
    );
    sleeper.kill("SIGKILL");
    await sleeper.status;
    const resumed = await runCli(["distill", "--resume", "--out", "run", "--epochs", "2"], dir);
    assert.equal(resumed.code, 0, resumed.stderr);
    await assert.rejects(Deno.stat(path.join(run, LOCK_FILE)), Deno.errors.NotFound);

    // --overwrite replaces the run's own files: nothing of the old run is mixed in.
    const over = await runCli(args("run", 1, ["--seed", "1", "--overwrite"]), dir);
    assert.equal(over.code, 0, over.stderr);
    assert.equal((await lines(path.join(run, "metrics.jsonl"))).length, 1);
    assert.equal((await readRunConfig(run)).seed, 1);
    await assert.rejects(Deno.stat(path.join(run, "resume_log.jsonl")), Deno.errors.NotFound);

    // Two runs started together on one new folder: exactly one trains.
    const both = await Promise.all([
      runCli(args("twin", 1), dir),
      runCli(args("twin", 1, ["--seed", "2"]), dir),
    ]);
    const ok = both.filter((r) => r.code === 0);
    assert.equal(ok.length, 1, both.map((r) => r.stderr).join("\n---\n"));
    assertOneLineError(both.find((r) => r.code !== 0)!, /twin (is in use by another run|already holds)/);
    assert.equal((await lines(path.join(dir, "twin", "metrics.jsonl"))).length, 1);
  });
});

Deno.test("an unwritable --student-out or --out fails before the first step, leaving no run folder", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(path.join(dir, "blocker"), "a file, not a folder");
    const t0 = performance.now();
    const r = await runCli([...args("run", 1), "--student-out", "blocker/s.onnx"], dir);
    assertOneLineError(r, /--student-out blocker\/s\.onnx is not writable/);
    assert.doesNotMatch(r.stdout + r.stderr, /epoch 1/);
    await assert.rejects(Deno.stat(path.join(dir, "run")), Deno.errors.NotFound);
    console.log(`refused after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assertOneLineError(
      await runCli([...args("blocker/run", 1), "--student-out", "s.onnx"], dir),
      /blocker\/run: cannot (read|create) the run folder/,
    );
  });
});

Deno.test("kill -9 mid-epoch with --checkpoint-every 1 loses at most one step; --resume --out alone gives the uninterrupted weights", async () => {
  await withDir(async (dir) => {
    const straight = await runCli(args("straight", 2, ["--checkpoint-every", "1"]), dir);
    assert.equal(straight.code, 0, straight.stderr);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args("killed", 2, ["--checkpoint-every", "1"])],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).spawn();
    const ckFile = path.join(dir, "killed", "checkpoint.safetensors");
    const t0 = Date.now();
    for (;;) {
      try {
        await Deno.stat(ckFile);
        break;
      } catch { /* not yet */ }
      if (Date.now() - t0 > 120_000) {
        child.kill("SIGKILL");
        throw new Error("no checkpoint appeared");
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    await child.status;
    const ck = await loadCheckpoint<{ epoch: number; batchInEpoch: number }>(ckFile);
    // Killed as soon as the first per-step checkpoint appeared: a position inside an epoch.
    console.log(`killed; checkpoint at epoch ${ck.loop.epoch}, batch ${ck.loop.batchInEpoch}`);
    assert.ok(
      ck.loop.batchInEpoch >= 1,
      `checkpoint at epoch ${ck.loop.epoch}, batch ${ck.loop.batchInEpoch}`,
    );
    const resumed = await runCli(["distill", "--resume", "--out", "killed"], dir);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stdout + resumed.stderr,
      new RegExp(`resuming at epoch ${ck.loop.epoch}, batch ${ck.loop.batchInEpoch} `),
    );
    await sameFile(
      path.join(dir, "killed", "student.onnx"),
      path.join(dir, "straight", "student.onnx"),
      "resumed student",
    );
  });
});

Deno.test("resumeChanges and the folder checks (library level)", async () => {
  const saved = resolveConfig({ epochs: 2 });
  const d = resumeChanges(saved, resolveConfig({ epochs: 5, engine: "tfjs", gamma: 1, out: "elsewhere" }));
  assert.deepEqual(d.safe.map((x) => x.field), ["epochs", "engine"]);
  assert.deepEqual(d.unsafe.map((x) => [x.field, x.from, x.to]), [["gamma", 0.5, 1]]);
  const dir = await Deno.makeTempDir({ prefix: "okd_lock_" });
  try {
    await checkNewRunFolder(dir, false); // empty
    const lock = await RunLock.acquire(dir);
    await checkNewRunFolder(dir, false); // only the lock: still empty
    await assert.rejects(
      RunLock.acquire(dir),
      (e) => e instanceof RunFolderError && /in use/.test(e.message),
    );
    await lock.release();
    // A lock left by a dead process on this host is taken over.
    await Deno.writeTextFile(
      path.join(dir, LOCK_FILE),
      JSON.stringify({ pid: 999999999, host: os.hostname(), started: "2026-01-01T00:00:00Z" }),
    );
    const again = await RunLock.acquire(dir);
    assert.equal(JSON.parse(await Deno.readTextFile(path.join(dir, LOCK_FILE))).pid, Deno.pid);
    await again.release();
    await Deno.writeTextFile(path.join(dir, "notes.txt"), "mine");
    await assert.rejects(checkNewRunFolder(dir, false), /already holds other files \(notes\.txt\)/);
    await checkNewRunFolder(dir, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
