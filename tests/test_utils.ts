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

/**
 * Registers a test that reads the shared material beside the repository (`../shared`: the
 * paper's teachers, real CIFAR records). Without that folder it is reported as ignored, with the
 * reason in its name, rather than failing on a user's fresh clone; CI has the folder.
 *
 * @example
 * ```ts ignore
 * import { sharedTest } from "./test_utils.ts";
 * sharedTest("reads a teacher", async () => {});
 * ```
 */
export function sharedTest(name: string, fn: () => void | Promise<void>, ignore?: string): void {
  const why = hasShared() ? ignore : "needs ../shared";
  Deno.test({ name: why ? `${name} [${why}]` : name, ignore: why !== undefined, fn });
}

/** Debian's Fashion-MNIST folder (package dataset-fashion-mnist). */
export const DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist";

/**
 * Registers a test that reads Debian's Fashion-MNIST; reported as ignored (reason in its name)
 * where the package is not installed. CI installs it.
 *
 * @example
 * ```ts ignore
 * import { fashionMnistTest } from "./test_utils.ts";
 * fashionMnistTest("reads Fashion-MNIST", async () => {});
 * ```
 */
export function fashionMnistTest(name: string, fn: () => void | Promise<void>): void {
  let present = false;
  try {
    present = Deno.statSync(DEBIAN_FASHION_MNIST).isDirectory;
  } catch { /* absent */ }
  Deno.test({
    name: present ? name : `${name} [needs apt package dataset-fashion-mnist]`,
    ignore: !present,
    fn,
  });
}
