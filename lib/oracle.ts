/**
 * Compatibility path: the oracle lives in `lib/oracle/` (see `lib/oracle/mod.ts`). Kept so that
 * modules written against the old path (`createResponseProvider`, `reinforceInput`, ...) keep
 * working.
 *
 * @example
 * ```ts
 * import { responseProviderNames } from "./oracle.ts";
 * console.log(responseProviderNames().slice(0, 2)); // ["plain", "oracle"]
 * ```
 * @module
 */

export * from "./oracle/mod.ts";
