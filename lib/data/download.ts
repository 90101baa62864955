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
import { removeDeadTemps, tempName } from "../atomic_file.ts";
import { type Checksum, describeChecksum, fileMatches } from "./checksum.ts";
import { DataError } from "./dataset.ts";

/** Options of {@link ensureFile}. */
export interface EnsureFileOptions {
  /** Called as bytes arrive (at most every 256 KiB, and once at the end); `total` from Content-Length. */
  onProgress?: (bytes: number, total: number | null) => void;
  /** How to provide a local copy instead (e.g. `pass --data-dir <folder> holding the archive`). */
  hint?: string;
  /** Cancels the download at once (Ctrl-C). */
  signal?: AbortSignal;
  /** Milliseconds to wait for the server's response headers (default 30 s). */
  connectTimeoutMs?: number;
  /** Milliseconds without a received byte after which the download is abandoned (default 60 s). */
  idleTimeoutMs?: number;
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

  // One controller ends the request for every reason: the caller's signal, or a timeout.
  const ac = new AbortController();
  let why = "";
  const stop = (reason: string) => {
    if (!why) why = reason;
    ac.abort();
  };
  const onAbort = () => stop("interrupted");
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort);
  const connectMs = opts.connectTimeoutMs ?? 30_000;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let timer = setTimeout(() => stop(`no response within ${seconds(connectMs)} (connect timeout)`), connectMs);
  const failed = (e: unknown, bytes?: number) =>
    new DataError(
      `Could not download ${url}: ${why || oneLine(e)}${
        bytes === undefined ? "" : ` after ${bytes} bytes`
      }. ${localHint}`,
    );
  try {
    return await transfer();
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }

  async function transfer(): Promise<string> {
    let response: Response;
    try {
      response = await fetch(url, { signal: ac.signal });
    } catch (e) {
      throw failed(e);
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
    // Leftovers of downloads killed mid-transfer (their process is gone).
    await removeDeadTemps(parentDir(dest), [dest.slice(parentDir(dest).length + 1)]);
    const tmp = tempName(dest, "download.tmp");
    const hash = createHash(algorithm);
    let bytes = 0;
    try {
      const file = await Deno.open(tmp, { write: true, createNew: true });
      const writer = file.writable.getWriter();
      try {
        let reported = 0;
        const reader = response.body.getReader();
        const idle = () => {
          clearTimeout(timer);
          timer = setTimeout(() => stop(`no data for ${seconds(idleMs)} (idle timeout)`), idleMs);
        };
        idle();
        for (;;) {
          const { done, value: chunk } = await reader.read();
          if (done) break;
          idle();
          hash.update(chunk);
          await writer.write(chunk);
          bytes += chunk.length;
          if (opts.onProgress && bytes - reported >= PROGRESS_STEP) {
            reported = bytes;
            opts.onProgress(bytes, total);
          }
        }
        await writer.close();
        clearTimeout(timer);
      } catch (e) {
        await writer.abort().catch(() => {});
        throw failed(e, bytes);
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
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
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
