/**
 * Running the command line as a user does (a `deno run -A cli.ts` subprocess) and checking
 * that a failure is reported as one clear `error:` line.
 * @module
 */
import assert from "node:assert/strict";

/** Path of the command line entry point, `cli.ts`. */
export const CLI: string = new URL("../cli.ts", import.meta.url).pathname;

/** What a finished command line run left: its exit code and decoded output. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cli.ts` with `args` in `cwd` (`deno run -A`) and waits for it, capturing its output. */
export async function runCli(args: string[], cwd: string): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Asserts that the run failed with one clear error: a nonzero exit code, exactly one `error: `
 * line on stderr, the last non-empty one, matching `pattern`, no stack trace (`^\s+at `) and no
 * native onnxruntime log line. With `{ onlyLine: true }` stderr must be that one line alone.
 */
export function assertOneLineError(r: Run, pattern: RegExp, opts: { onlyLine?: boolean } = {}): void {
  assert.notEqual(r.code, 0, `should fail:\n${r.stdout}\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n").filter((l) => l.trim());
  if (opts.onlyLine) assert.equal(lines.length, 1, `expected one error line:\n${r.stderr}`);
  const errors = lines.filter((l) => /^error: /.test(l));
  assert.equal(errors.length, 1, r.stderr);
  assert.equal(lines.at(-1), errors[0], r.stderr);
  assert.match(errors[0], pattern);
  assert.ok(!/^\s+at /m.test(r.stderr), `stack trace printed:\n${r.stderr}`);
  assert.ok(!/\[E:onnxruntime/.test(r.stderr), `native log printed:\n${r.stderr}`);
}
