/**
 * The one error type of the checkpoint readers: a single line naming the file and the problem,
 * so the command line can print it as is instead of a stack trace from deep inside a parser.
 *
 * @example
 * ```ts
 * import { CheckpointError } from "./checkpoint_error.ts";
 * const e = new CheckpointError("teacher.pth", "the file is empty");
 * console.log(e.message); // teacher.pth: the file is empty
 * ```
 * @module
 */

/**
 * A checkpoint that cannot be read or does not fit; `message` is `<file>: <problem>`.
 *
 * @example
 * ```ts
 * import { CheckpointError } from "./checkpoint_error.ts";
 * try {
 *   throw new CheckpointError("a.pth", "not a zip archive");
 * } catch (e) {
 *   console.log(e instanceof CheckpointError && e.problem); // not a zip archive
 * }
 * ```
 */
export class CheckpointError extends Error {
  /** Error name. */
  override name = "CheckpointError";

  /** `fileName` is how the user named the file; `problem` is one line without it. */
  constructor(readonly fileName: string, readonly problem: string) {
    super(`${fileName}: ${problem}`);
  }
}

/**
 * Runs `fn`; anything it throws that is not already a {@link CheckpointError} becomes one for
 * `fileName` with `what` as context (parsers throw plain errors and know no file names).
 *
 * @example
 * ```ts
 * import { withFileName } from "./checkpoint_error.ts";
 * try {
 *   withFileName("x.pth", "data.pkl", () => { throw new Error("unknown opcode 0xff at byte 3"); });
 * } catch (e) {
 *   console.log((e as Error).message); // x.pth: data.pkl: unknown opcode 0xff at byte 3
 * }
 * ```
 */
export function withFileName<T>(fileName: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new CheckpointError(fileName, what ? `${what}: ${firstLine(msg)}` : firstLine(msg));
  }
}

function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return i < 0 ? s : s.slice(0, i);
}
