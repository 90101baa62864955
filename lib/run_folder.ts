/**
 * The run folder as the unit of work: what may change when a run is resumed (and what is
 * refused, before anything is written), protection of a folder that already holds a run, a lock
 * that refuses a second live run on a folder (and not one whose owner died), output paths
 * checked writable before training, and the leftovers of killed writers cleaned.
 *
 * @example
 * ```ts
 * import { resumeChanges } from "./run_folder.ts";
 * import { resolveConfig } from "./config.ts";
 * const saved = resolveConfig({ epochs: 2 });
 * console.log(resumeChanges(saved, resolveConfig({ epochs: 4 })).safe.map((d) => d.flag)); // ["--epochs"]
 * ```
 * @module
 */

import * as os from "node:os";
import * as path from "node:path";
import { processAlive, removeDeadTemps, tempName, writeFileAtomic } from "./atomic_file.ts";
import { type CheckpointRun, readCheckpointInfo } from "./checkpoint.ts";
import { DISTILL_DEFAULTS, DISTILL_FIELDS, type DistillConfig, flagName, resolveConfig } from "./config.ts";

/** Thrown when a run folder or its settings refuse the command; the message is one line. */
export class RunFolderError extends Error {
  /** Error name. */
  override name = "RunFolderError";
}

/**
 * Settings that may change when a run is resumed: how much longer it runs, where and how fast
 * it computes, how often it checkpoints, where data is found and the student is exported.
 * `--epochs` may only grow past the epochs already done, and not under the cosine schedule
 * (whose rates depend on it).
 */
export const RESUME_SAFE: readonly (keyof DistillConfig)[] = [
  "epochs",
  "engine",
  "backend",
  // Where the teacher runs and each side's threads: like the engine, not the run's settings.
  "overlap",
  "teacherThreads",
  "studentThreads",
  "checkpointEvery",
  "studentOut",
  "testTeacher",
  "dataDir",
  "download",
];

/** Not settings of the run itself (the folder, and how this command treats it). */
const NOT_COMPARED: readonly (keyof DistillConfig)[] = ["out", "resume", "overwrite"];

/** Lock file of a live run. */
export const LOCK_FILE = ".lock";
/** One JSON line per resume: when, from where, what changed. */
export const RESUME_LOG = "resume_log.jsonl";

/** One setting that differs. */
export interface SettingChange {
  /** Config field. */
  field: keyof DistillConfig;
  /** Its CLI flag. */
  flag: string;
  /** Value in the run folder. */
  from: unknown;
  /** Value asked for now. */
  to: unknown;
}

/**
 * The settings that shape a run's weights (everything but {@link RESUME_SAFE} and the folder
 * flags): what a checkpoint records and a resume must keep.
 *
 * @example
 * ```ts
 * import { runSettings } from "./run_folder.ts";
 * import { resolveConfig } from "./config.ts";
 * const s = runSettings(resolveConfig());
 * console.log(s.student, "epochs" in s); // resnet20 false
 * ```
 */
export function runSettings(c: DistillConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(DISTILL_FIELDS) as (keyof DistillConfig)[]) {
    if (!RESUME_SAFE.includes(k) && !NOT_COMPARED.includes(k)) out[k] = c[k];
  }
  return out;
}

const show = (v: unknown) => Array.isArray(v) ? v.join(",") : typeof v === "string" ? (v || '""') : String(v);

/**
 * One-line list of changes: `--lr 0.05 -> 0.1, --student resnet20 -> resnet8`.
 *
 * @example
 * ```ts
 * import { describeChanges } from "./run_folder.ts";
 * console.log(describeChanges([{ field: "lr", flag: "--lr", from: 0.05, to: 0.1 }])); // --lr 0.05 -> 0.1
 * ```
 */
export function describeChanges(changes: readonly SettingChange[]): string {
  return changes.map((d) => `${d.flag} ${show(d.from)} -> ${show(d.to)}`).join(", ");
}

/**
 * Splits the differences between a run folder's settings and the ones asked for into the
 * safe ones (kept, and recorded) and the others (refused).
 *
 * @example
 * ```ts
 * import { resumeChanges } from "./run_folder.ts";
 * import { resolveConfig } from "./config.ts";
 * const d = resumeChanges(resolveConfig(), resolveConfig({ lr: 0.1, engine: "tfjs" }));
 * console.log(d.unsafe.map((x) => x.flag), d.safe.map((x) => x.flag)); // ["--lr"] ["--engine"]
 * ```
 */
export function resumeChanges(
  saved: DistillConfig,
  wanted: DistillConfig,
): { safe: SettingChange[]; unsafe: SettingChange[] } {
  const safe: SettingChange[] = [], unsafe: SettingChange[] = [];
  for (const field of Object.keys(DISTILL_FIELDS) as (keyof DistillConfig)[]) {
    if (NOT_COMPARED.includes(field)) continue;
    if (JSON.stringify(saved[field]) === JSON.stringify(wanted[field])) continue;
    const d = { field, flag: `--${flagName(field)}`, from: saved[field], to: wanted[field] };
    (RESUME_SAFE.includes(field) ? safe : unsafe).push(d);
  }
  return { safe, unsafe };
}

/**
 * Reads the settings a run folder was started with (`config.json`), as a layer for
 * {@link resolveConfig}. Errors name the file.
 *
 * @example
 * ```ts
 * import { readRunConfig } from "./run_folder.ts";
 * try { await readRunConfig("/nonexistent"); } catch (e) { console.log((e as Error).message.split(":")[0]); } // /nonexistent/config.json
 * ```
 */
export async function readRunConfig(dir: string): Promise<Record<string, unknown>> {
  const file = path.join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "not found" : (e as Error).message;
    throw new RunFolderError(
      `${file}: ${why}; --resume --out <folder> continues a run folder written by distill or train`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RunFolderError(`${file}: damaged run settings (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new RunFolderError(`${file}: damaged run settings (not a JSON object)`);
  }
  const layer = parsed as Record<string, unknown>;
  try {
    resolveConfig(layer);
  } catch (e) {
    throw new RunFolderError(`${file}: ${(e as Error).message}`);
  }
  return layer;
}

/** What a run folder holds, as far as starting or resuming goes. */
export interface FolderState {
  /** Entries other than a dead owner's lock and temporary files. */
  entries: string[];
  /** Whether `config.json` is there. */
  hasConfig: boolean;
  /** Whether `checkpoint.safetensors` is there. */
  hasCheckpoint: boolean;
}

/**
 * Lists a run folder (an absent folder is empty), ignoring a dead owner's lock and temporary
 * files of killed writers.
 *
 * @example
 * ```ts
 * import { folderState } from "./run_folder.ts";
 * console.log((await folderState("/nonexistent/run")).entries); // []
 * ```
 */
export async function folderState(dir: string): Promise<FolderState> {
  const entries: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (/\.\d+\.[0-9a-f]{8}\.(download\.)?tmp$/.test(e.name)) continue;
      if (e.name === LOCK_FILE) continue;
      entries.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new RunFolderError(`${dir}: cannot read the run folder (${(e as Error).message})`);
    }
  }
  entries.sort();
  return {
    entries,
    hasConfig: entries.includes("config.json"),
    hasCheckpoint: entries.includes("checkpoint.safetensors"),
  };
}

/**
 * Refuses to start a new run in a folder that already holds files (unless `overwrite`).
 *
 * @example
 * ```ts
 * import { checkNewRunFolder } from "./run_folder.ts";
 * await checkNewRunFolder("/nonexistent/run", false); // an absent folder is fine
 * ```
 */
export async function checkNewRunFolder(dir: string, overwrite: boolean): Promise<void> {
  const st = await folderState(dir);
  if (st.entries.length === 0 || overwrite) return;
  const what = st.hasCheckpoint ? "a run with a checkpoint" : st.hasConfig ? "a run" : "other files";
  throw new RunFolderError(
    `${dir} already holds ${what} (${st.entries.slice(0, 4).join(", ")}${
      st.entries.length > 4 ? ", ..." : ""
    }); ` +
      `continue it with --resume --out ${dir}, replace it with --overwrite, or choose another --out`,
  );
}

/**
 * Removes what an earlier run wrote into `dir` (for `--overwrite`): the files the trainer writes
 * and temporary files; other files are left alone.
 *
 * @example
 * ```ts
 * import { clearRunFiles } from "./run_folder.ts";
 * await clearRunFiles("/nonexistent/run");
 * ```
 */
export async function clearRunFiles(dir: string, names: readonly string[] = RUN_OUTPUTS): Promise<void> {
  for (const n of names) await Deno.remove(path.join(dir, n)).catch(() => {});
  await removeDeadTemps(dir);
}

/** Files a run writes into its folder (removed by `--overwrite`). */
export const RUN_OUTPUTS: readonly string[] = [
  "config.json",
  "metrics.jsonl",
  "metrics.csv",
  "curves.png",
  "teacher_test.json",
  "summary.json",
  "checkpoint.safetensors",
  "best.safetensors",
  RESUME_LOG,
];

/** Who holds a lock. */
export interface LockOwner {
  /** Process id. */
  pid: number;
  /** Host name. */
  host: string;
  /** ISO start time. */
  started: string;
}

/**
 * A lock on a run folder: `.lock` holds the owner's pid, host and start time. A second live
 * run is refused; a lock whose process is gone (same host) is taken over.
 *
 * @example
 * ```ts
 * import { RunLock } from "./run_folder.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await RunLock.acquire(dir);
 * try { await RunLock.acquire(dir); } catch (e) { console.log((e as Error).message.includes("in use")); } // true
 * await lock.release();
 * ```
 */
export class RunLock {
  private constructor(readonly file: string, readonly owner: LockOwner) {}

  /** Takes the lock of `dir` (creating the folder), or throws a {@link RunFolderError}. */
  static async acquire(dir: string): Promise<RunLock> {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (e) {
      throw new RunFolderError(`${dir}: cannot create the run folder (${(e as Error).message})`);
    }
    const file = path.join(dir, LOCK_FILE);
    const owner: LockOwner = { pid: Deno.pid, host: hostName(), started: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await Deno.writeTextFile(file, JSON.stringify(owner) + "\n", { createNew: true });
        return new RunLock(file, owner);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) {
          throw new RunFolderError(`${dir}: cannot write to the run folder (${(e as Error).message})`);
        }
      }
      let held: Partial<LockOwner> = {};
      try {
        held = JSON.parse(await Deno.readTextFile(file));
      } catch { /* half-written or removed: judged below by age */ }
      const sameHost = held.host === owner.host;
      const dead = typeof held.pid === "number" && sameHost && !processAlive(held.pid);
      if (!dead) {
        if (held.pid === undefined && attempt < 2) { // being written right now, or just released
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        throw new RunFolderError(
          `${dir} is in use by another run (pid ${held.pid ?? "?"} on ${held.host ?? "?"}, started ${
            held.started ?? "?"
          }); if that run is no longer alive, delete ${file}`,
        );
      }
      // The owner died (kill -9, power loss): take the lock over.
      await Deno.remove(file).catch(() => {});
    }
    throw new RunFolderError(`${dir}: could not take the run folder's lock ${file}`);
  }

  /** Releases the lock (when it is still this process's). */
  async release(): Promise<void> {
    try {
      const held = JSON.parse(await Deno.readTextFile(this.file)) as LockOwner;
      if (held.pid === this.owner.pid && held.started === this.owner.started) await Deno.remove(this.file);
    } catch { /* already gone */ }
  }

  /** Synchronous release, for exit handlers. */
  releaseSync(): void {
    try {
      const held = JSON.parse(Deno.readTextFileSync(this.file)) as LockOwner;
      if (held.pid === this.owner.pid && held.started === this.owner.started) Deno.removeSync(this.file);
    } catch { /* already gone */ }
  }
}

/**
 * Checks that `file` can be written (its folder is created if needed) by writing and removing a
 * temporary sibling, so an unwritable output fails before training rather than after an epoch.
 *
 * @example
 * ```ts
 * import { checkWritable } from "./run_folder.ts";
 * const dir = await Deno.makeTempDir();
 * await checkWritable(`${dir}/weights/student.onnx`, "--student-out");
 * ```
 */
export async function checkWritable(file: string, what: string): Promise<void> {
  const probe = tempName(file);
  try {
    await Deno.mkdir(path.dirname(file) || ".", { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(), { createNew: true });
    await Deno.remove(probe);
  } catch (e) {
    await Deno.remove(probe).catch(() => {});
    throw new RunFolderError(`${what} ${file} is not writable (${(e as Error).message.split("\n")[0]})`);
  }
  try {
    if ((await Deno.stat(file)).isDirectory) {
      throw new RunFolderError(`${what} ${file} is a folder, not a file`);
    }
  } catch (e) {
    if (e instanceof RunFolderError) throw e;
  }
}

/**
 * Records a resume in the folder: a line of `resume_log.jsonl` (time, position, changed
 * settings) and, when safe settings changed, `config.json` updated to them (so the next
 * `--resume` alone continues with them).
 *
 * @example
 * ```ts
 * import { recordResume } from "./run_folder.ts";
 * import { resolveConfig } from "./config.ts";
 * const dir = await Deno.makeTempDir();
 * await recordResume(dir, resolveConfig({ epochs: 4 }), [], { epoch: 2, batch: 0 });
 * console.log(JSON.parse(await Deno.readTextFile(`${dir}/resume_log.jsonl`)).from.epoch); // 2
 * ```
 */
export async function recordResume(
  dir: string,
  config: DistillConfig,
  changes: readonly SettingChange[],
  from: { epoch: number; batch: number },
): Promise<void> {
  if (changes.length > 0) await writeRunConfig(dir, config);
  const line = {
    time: new Date().toISOString(),
    pid: Deno.pid,
    host: hostName(),
    from,
    changed: Object.fromEntries(changes.map((d) => [d.field, { from: d.from, to: d.to }])),
  };
  await Deno.writeTextFile(path.join(dir, RESUME_LOG), JSON.stringify(line) + "\n", { append: true });
}

/**
 * Writes `config.json` (the settings the run continues from), without the per-command flags.
 *
 * @example
 * ```ts
 * import { writeRunConfig } from "./run_folder.ts";
 * import { resolveConfig } from "./config.ts";
 * const dir = await Deno.makeTempDir();
 * await writeRunConfig(dir, resolveConfig({ resume: true }));
 * console.log(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)).resume); // false
 * ```
 */
export async function writeRunConfig(dir: string, config: DistillConfig): Promise<void> {
  const saved = { ...config, out: config.out || dir, resume: DISTILL_DEFAULTS.resume, overwrite: false };
  await writeFileAtomic(path.join(dir, "config.json"), JSON.stringify(saved, null, 2) + "\n");
}

/**
 * Why a checkpoint does not belong to a run (another student architecture or other settings),
 * in words, or null when it does (or recorded nothing: written by an older version).
 *
 * @example
 * ```ts
 * import { checkpointMismatch } from "./run_folder.ts";
 * const saved = { student: "resnet20", settings: { lr: 0.05 } };
 * console.log(checkpointMismatch("c.safetensors", saved, { student: "resnet8", settings: { lr: 0.05 } }));
 * // c.safetensors holds a resnet20 student, but this run builds a resnet8 (--student) ...
 * ```
 */
export function checkpointMismatch(
  file: string,
  saved: CheckpointRun | undefined,
  now: CheckpointRun,
): string | null {
  if (!saved) return null;
  if (saved.student !== now.student) {
    return `${file} holds a ${saved.student} student, but this run builds a ${now.student} (--student); ` +
      `resume with the run's own settings or start a new run with another --out`;
  }
  const diffs = Object.keys({ ...saved.settings, ...now.settings })
    .filter((k) => JSON.stringify(saved.settings[k]) !== JSON.stringify(now.settings[k]))
    .map((k) => `--${flagName(k)} ${show(saved.settings[k])} -> ${show(now.settings[k])}`);
  if (diffs.length === 0) return null;
  return `${file} was written with other settings than this run's: ${diffs.join(", ")}`;
}

/** What a resume will do, decided before anything is written. */
export interface ResumePlan {
  /** Safe settings that differ from the folder's (kept, announced and recorded). */
  changes: SettingChange[];
  /** Whether there is a checkpoint to continue from (otherwise the run starts from its settings). */
  hasCheckpoint: boolean;
  /** Where the checkpoint stands (1-based epoch, batches done in it). */
  from: { epoch: number; batch: number };
}

/**
 * Decides whether `wanted` may resume the run in `dir`, reading only: the folder's
 * `config.json` and its checkpoint's header. Refuses (one line, nothing written) any change of
 * a setting outside {@link RESUME_SAFE}, fewer epochs than already done, a changed `--epochs`
 * under the cosine schedule, and a checkpoint written for another architecture or settings.
 *
 * @example
 * ```ts
 * import { planResume } from "./run_folder.ts";
 * try { await planResume("/nonexistent", (await import("./config.ts")).resolveConfig()); }
 * catch (e) { console.log((e as Error).message.startsWith("/nonexistent/config.json: not found")); } // true
 * ```
 */
export async function planResume(dir: string, wanted: DistillConfig): Promise<ResumePlan> {
  const saved = resolveConfig(await readRunConfig(dir));
  const { safe, unsafe } = resumeChanges(saved, wanted);
  const only = RESUME_SAFE.map((f) => `--${flagName(f)}`).join(", ");
  if (unsafe.length > 0) {
    throw new RunFolderError(
      `cannot resume ${dir}: ${
        describeChanges(unsafe)
      } differ from its config.json (a resume may change only ` +
        `${only}); leave them out to continue the run, or start a new run with another --out`,
    );
  }
  const st = await folderState(dir);
  const ckFile = path.join(dir, "checkpoint.safetensors");
  let from = { epoch: 1, batch: 0 };
  if (st.hasCheckpoint) {
    const info = await readCheckpointInfo(ckFile);
    const why = checkpointMismatch(ckFile, info.run, {
      student: wanted.student,
      settings: runSettings(wanted),
    });
    if (why) throw new RunFolderError(why);
    const loop = info.loop as { epoch?: unknown; batchInEpoch?: unknown };
    if (typeof loop.epoch !== "number" || typeof loop.batchInEpoch !== "number") {
      throw new RunFolderError(`${ckFile}: damaged checkpoint metadata (no training position)`);
    }
    from = { epoch: loop.epoch, batch: loop.batchInEpoch };
  } else if (st.entries.includes("metrics.jsonl")) {
    const metrics = await Deno.readTextFile(path.join(dir, "metrics.jsonl")).catch(() => "");
    if (metrics.trim() !== "") {
      throw new RunFolderError(
        `${ckFile} is missing although ${dir} has recorded epochs; nothing to resume from ` +
          `(start again with --overwrite, or use another --out)`,
      );
    }
  }
  const done = from.epoch - 1;
  const epochs = safe.find((d) => d.field === "epochs");
  if (epochs && wanted.lrSchedule === "cosine") {
    throw new RunFolderError(
      `cannot resume ${dir} with --epochs ${wanted.epochs}: under the cosine schedule the learning rates of ` +
        `the remaining epochs depend on --epochs (${saved.epochs} in its config.json)`,
    );
  }
  if (wanted.epochs < done) {
    throw new RunFolderError(
      `cannot resume ${dir} with --epochs ${wanted.epochs}: it has already trained ${done} epochs`,
    );
  }
  return { changes: safe, hasCheckpoint: st.hasCheckpoint, from };
}

/**
 * This machine's name, for lock owners; "" where the script may not read it (a library user
 * without `--allow-sys`), so a lock then only recognises its own host's dead owners by pid.
 */
function hostName(): string {
  try {
    return os.hostname();
  } catch {
    return "";
  }
}

/** File in a run folder holding the teacher's test metrics (plain, and oracle when used), %. */
export const TEACHER_TEST_FILE = "teacher_test.json";

/** The teacher's test metrics as written to {@link TEACHER_TEST_FILE} (top-1 and ECE in %). */
export interface TeacherTest {
  /** On the plain test images. */
  plain: { top1: number; ece: number; nll: number };
  /** As the oracle (on x*, true labels), or null for plain KD. */
  oracle: { top1: number; ece: number; nll: number; gamma: number } | null;
}
