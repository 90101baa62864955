/**
 * Base64 encoding of bytes (node:buffer; deno std is unreachable from this project's machines).
 *
 * @example
 * ```ts
 * import { encodeBase64 } from "./encoding.ts";
 * console.log(encodeBase64(new Uint8Array([1, 2]))); // AQI=
 * ```
 * @module
 */

import { Buffer } from "node:buffer";

/**
 * Bytes to base64 text.
 *
 * @example
 * ```ts
 * import { encodeBase64 } from "./encoding.ts";
 * console.log(encodeBase64(new TextEncoder().encode("hi"))); // aGk=
 * ```
 */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
