/**
 * Pinned downloads: a file is fetched only when it is missing or has the wrong checksum, is
 * verified before it becomes visible, and reaches its place by an atomic rename, so an
 * interrupted or corrupted download never replaces a good file. Used for dataset archives (MD5)
 * and teacher checkpoints (SHA-256).
 *
 * @example
 * ```ts
 * import { ensureFile } from "./download.ts";
 * const dir = await Deno.makeTempDir();
 * try {
 *   await ensureFile("http://127.0.0.1:9/none.bin", `${dir}/none.bin`, { md5: "0".repeat(32) },
 *     { hint: "Copy none.bin into the folder and pass --data-dir <folder>." });
 * } catch (e) {
 *   console.log((e as Error).message); // Could not download http://127.0.0.1:9/none.bin: ... --data-dir <folder>.
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { type Checksum, describeChecksum, fileMatches } from "./checksum.ts";
import { DataError } from "./dataset.ts";

/** Options of {@link ensureFile}. */
export interface EnsureFileOptions {
  /** Called as bytes arrive (at most every 256 KiB, and once at the end); `total` from Content-Length. */
  onProgress?: (bytes: number, total: number | null) => void;
  /** How to provide a local copy instead (e.g. `pass --data-dir <folder> holding the archive`). */
  hint?: string;
  /** Cancels the download. */
  signal?: AbortSignal;
  /** Checks the downloaded temporary file before it is renamed into place (throw to reject). */
  verify?: (tmpPath: string, digest: string) => Promise<void>;
}

const PROGRESS_STEP = 256 * 1024;

/**
 * Makes sure `dest` holds the file with the given checksum: an existing good file is used as
 * is; otherwise `url` is fetched into a temporary file beside `dest`, verified and renamed into
 * place. Errors are {@link DataError}s whose one-line message names the URL (or file) and, for
 * network failures, how to use a local copy. Returns `dest`.
 *
 * @example
 * ```ts
 * import { ensureFile } from "./download.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/abc.txt`, "abc");
 * // Already present with the right digest: nothing is fetched.
 * await ensureFile("http://127.0.0.1:9/abc.txt", `${dir}/abc.txt`, { md5: "900150983cd24fb0d6963f7d28e17f72" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function ensureFile(
  url: string,
  dest: string,
  checksum: Checksum,
  opts: EnsureFileOptions = {},
): Promise<string> {
  if (await fileMatches(dest, checksum)) return dest;
  const { algorithm, hex: expected } = describeChecksum(checksum);
  const localHint = opts.hint ?? `To use a local copy, put the file at ${dest}.`;

  let response: Response;
  try {
    response = await fetch(url, { signal: opts.signal });
  } catch (e) {
    throw new DataError(`Could not download ${url}: ${oneLine(e)}. ${localHint}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new DataError(
      `Could not download ${url}: HTTP ${response.status} ${response.statusText}. ${localHint}`,
    );
  }
  const lengthHeader = response.headers.get("content-length");
  const total = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;

  await Deno.mkdir(parentDir(dest), { recursive: true });
  const tmp = `${dest}.${crypto.randomUUID().slice(0, 8)}.download.tmp`;
  const hash = createHash(algorithm);
  let bytes = 0;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    const writer = file.writable.getWriter();
    try {
      let reported = 0;
      for await (const chunk of response.body) {
        hash.update(chunk);
        await writer.write(chunk);
        bytes += chunk.length;
        if (opts.onProgress && bytes - reported >= PROGRESS_STEP) {
          reported = bytes;
          opts.onProgress(bytes, total);
        }
      }
      await writer.close();
    } catch (e) {
      await writer.abort().catch(() => {});
      throw new DataError(`Could not download ${url}: ${oneLine(e)} after ${bytes} bytes. ${localHint}`);
    }
    opts.onProgress?.(bytes, total);
    const actual = hash.digest("hex");
    if (expected !== null && actual !== expected) {
      throw new DataError(
        `Checksum mismatch for ${url}: expected ${algorithm} ${expected}, got ${actual} (${bytes} bytes, download discarded)`,
      );
    }
    await opts.verify?.(tmp, actual);
    await Deno.rename(tmp, dest);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return dest;
}

function parentDir(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

function oneLine(e: unknown): string {
  let text = e instanceof Error ? e.message : String(e);
  // fetch's own message is often just "fetch failed"; the reason is in `cause`.
  const cause = e instanceof Error ? e.cause : undefined;
  if (cause instanceof Error && !text.includes(cause.message)) text += ` (${cause.message})`;
  return text.split("\n")[0].replace(/\.$/, "");
}
