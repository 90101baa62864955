/**
 * Atomic file writes: write a sibling temporary file, then rename over the target, so a crash
 * or Ctrl-C never leaves a half-written checkpoint or model and never loses the previous one.
 * Temporary files are named `<file>.<pid>.<random>.tmp`, so the ones a killed writer left
 * behind can be told apart and removed ({@link removeDeadTemps}), and the writes in flight can
 * be awaited ({@link atomicWritesSettled}: a second Ctrl-C lets the checkpoint save finish).
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.txt`, new TextEncoder().encode("hi"));
 * console.log(await Deno.readTextFile(`${dir}/a.txt`)); // hi
 * ```
 * @module
 */

import * as path from "node:path";

let pending = 0;
let settledWaiters: (() => void)[] = [];

/**
 * Writes `data` to `file` atomically (creating parent folders).
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/sub/b.bin`, new Uint8Array([1]));
 * ```
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  pending++;
  try {
    await Deno.mkdir(path.dirname(file) || ".", { recursive: true });
    const tmp = tempName(file);
    try {
      if (typeof data === "string") await Deno.writeTextFile(tmp, data);
      else await Deno.writeFile(tmp, data);
      await Deno.rename(tmp, file);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
  } finally {
    if (--pending === 0) {
      const waiters = settledWaiters;
      settledWaiters = [];
      for (const w of waiters) w();
    }
  }
}

/**
 * The temporary sibling used for an atomic write of `file` by this process.
 *
 * @example
 * ```ts
 * import { tempName } from "./atomic_file.ts";
 * console.log(tempName("run/c.safetensors").startsWith(`run/c.safetensors.${Deno.pid}.`)); // true
 * ```
 */
export function tempName(file: string, suffix = "tmp"): string {
  return `${file}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.${suffix}`;
}

/**
 * Resolves when no atomic write of this process is in flight (at once when none is).
 *
 * @example
 * ```ts
 * import { atomicWritesSettled } from "./atomic_file.ts";
 * await atomicWritesSettled();
 * ```
 */
export function atomicWritesSettled(): Promise<void> {
  if (pending === 0) return Promise.resolve();
  return new Promise((resolve) => settledWaiters.push(resolve));
}

/**
 * Whether a process with this id runs on this machine (`/proc` where there is one, else `kill -0`).
 *
 * @example
 * ```ts
 * import { processAlive } from "./atomic_file.ts";
 * console.log(processAlive(Deno.pid)); // true
 * ```
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync("/proc/self");
  } catch {
    try {
      return new Deno.Command("kill", { args: ["-0", String(pid)], stderr: "null" }).outputSync().success;
    } catch {
      return true; // cannot tell: assume alive (never delete a live writer's file)
    }
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

const TEMP_RE = /^(.+)\.(\d+)\.[0-9a-f]{8}\.(tmp|download\.tmp)$/;

/**
 * Removes the temporary files in `dir` (`<name>.<pid>.<random>.tmp`) whose writer process is
 * gone (killed mid-write), optionally only those of names in `only`. Returns the removed paths.
 *
 * @example
 * ```ts
 * import { removeDeadTemps } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/c.safetensors.999999999.0123abcd.tmp`, "half");
 * console.log((await removeDeadTemps(dir)).length); // 1
 * ```
 */
export async function removeDeadTemps(dir: string, only?: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return removed;
  }
  for (const e of entries) {
    const m = e.isFile ? TEMP_RE.exec(e.name) : null;
    if (!m || (only && !only.includes(m[1])) || processAlive(Number(m[2]))) continue;
    const p = path.join(dir, e.name);
    try {
      await Deno.remove(p);
      removed.push(p);
    } catch { /* another cleaner got it */ }
  }
  return removed;
}
