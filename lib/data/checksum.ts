/**
 * MD5 / SHA-256 digests of files and byte arrays (node:crypto), for pinned downloads, dataset
 * archives and teacher checkpoints.
 *
 * @example
 * ```ts
 * import { bytesDigest } from "./checksum.ts";
 * console.log(bytesDigest(new TextEncoder().encode("abc"), "md5")); // 900150983cd24fb0d6963f7d28e17f72
 * ```
 * @module
 */

import { createHash } from "node:crypto";

/**
 * An expected digest: MD5 (dataset archives) or SHA-256 (checkpoints), lowercase hex; or
 * `{ unpinned: algorithm }` for a file with no published digest (any content is accepted and
 * the caller verifies it another way, e.g. by loading it strictly).
 */
export type Checksum = { md5: string } | { sha256: string } | { unpinned: DigestAlgorithm };

/** Digest algorithm names. */
export type DigestAlgorithm = "md5" | "sha256";

/**
 * The algorithm and lowercase hex value of a {@link Checksum}.
 *
 * @example
 * ```ts
 * import { describeChecksum } from "./checksum.ts";
 * console.log(describeChecksum({ md5: "ABC" })); // { algorithm: "md5", hex: "abc" }
 * ```
 */
export function describeChecksum(c: Checksum): { algorithm: DigestAlgorithm; hex: string | null } {
  if ("unpinned" in c) return { algorithm: c.unpinned, hex: null };
  return "md5" in c ? { algorithm: "md5", hex: c.md5.toLowerCase() } : {
    algorithm: "sha256",
    hex: c.sha256.toLowerCase(),
  };
}

/**
 * Hex digest of bytes.
 *
 * @example
 * ```ts
 * import { bytesDigest } from "./checksum.ts";
 * console.log(bytesDigest(new Uint8Array(0), "sha256").slice(0, 8)); // e3b0c442
 * ```
 */
export function bytesDigest(bytes: Uint8Array, algorithm: DigestAlgorithm): string {
  return createHash(algorithm).update(bytes).digest("hex");
}

/**
 * Hex digest of a file, read in chunks (archives are hundreds of MB).
 *
 * @example
 * ```ts
 * import { fileDigest } from "./checksum.ts";
 * const p = await Deno.makeTempFile();
 * await Deno.writeTextFile(p, "abc");
 * console.log(await fileDigest(p, "md5")); // 900150983cd24fb0d6963f7d28e17f72
 * await Deno.remove(p);
 * ```
 */
export async function fileDigest(path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = createHash(algorithm);
  const file = await Deno.open(path, { read: true });
  // The readable closes the file when it ends or fails.
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Whether a file exists and has the expected checksum.
 *
 * @example
 * ```ts
 * import { fileMatches } from "./checksum.ts";
 * console.log(await fileMatches("/nonexistent", { md5: "0" })); // false
 * ```
 */
export async function fileMatches(path: string, expected: Checksum): Promise<boolean> {
  const { algorithm, hex } = describeChecksum(expected);
  try {
    if (hex === null) return (await Deno.stat(path)).isFile;
    return (await fileDigest(path, algorithm)) === hex;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
