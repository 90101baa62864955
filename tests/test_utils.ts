/**
 * Small helpers shared by the tests.
 * @module
 */

import { Buffer } from "node:buffer";

/** Path of the read-only shared material (teachers, CIFAR samples) beside the project. */
export const SHARED_DIR = new URL("../../shared/", import.meta.url);

/**
 * Base64 to bytes.
 *
 * @example
 * ```ts
 * import { decodeBase64 } from "./test_utils.ts";
 * console.log(decodeBase64("AQI=")); // Uint8Array [1, 2]
 * ```
 */
export function decodeBase64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "base64"));
}

/**
 * Whether the shared folder is present (tests that need it say so when it is not).
 *
 * @example
 * ```ts
 * import { hasShared } from "./test_utils.ts";
 * console.log(typeof hasShared()); // boolean
 * ```
 */
export function hasShared(): boolean {
  try {
    return Deno.statSync(SHARED_DIR).isDirectory;
  } catch {
    return false;
  }
}
