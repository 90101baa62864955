/**
 * What a path is, without throwing: the one place the package asks "is there a file (folder)
 * here?" (a missing path, or one that cannot be read, is simply not there).
 *
 * @example
 * ```ts
 * import { exists, isDir, isFile } from "./fs_probe.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "a");
 * console.log(await isFile(`${dir}/a.txt`), await isDir(dir), await exists(`${dir}/b`)); // true true false
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

/**
 * Whether anything (file, folder, device) is at `path`.
 *
 * @example
 * ```ts
 * import { exists } from "./fs_probe.ts";
 * console.log(await exists("/nonexistent/oracle-kd")); // false
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  return (await statOrNull(path)) !== null;
}

/**
 * Whether `path` is a regular file (links followed).
 *
 * @example
 * ```ts
 * import { isFile } from "./fs_probe.ts";
 * console.log(await isFile("/nonexistent/oracle-kd")); // false
 * ```
 */
export async function isFile(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isFile ?? false;
}

/**
 * Whether `path` is a folder (links followed).
 *
 * @example
 * ```ts
 * import { isDir } from "./fs_probe.ts";
 * console.log(await isDir("/")); // true
 * ```
 */
export async function isDir(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isDirectory ?? false;
}
