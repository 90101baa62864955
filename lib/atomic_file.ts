/**
 * Atomic file writes: write a sibling temporary file, then rename over the target, so a crash
 * or Ctrl-C never leaves a half-written checkpoint or model and never loses the previous one.
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
  await Deno.mkdir(path.dirname(file) || ".", { recursive: true });
  const tmp = `${file}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, file);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
