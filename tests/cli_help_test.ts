/**
 * Help reads the same for every command (issue 14 item 2): grouped options in one order, only
 * the command's own flags with their true defaults, one `--download/--no-download` syntax and
 * default, an example; `--version`; and `--config` read by every command.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import denoConfig from "../deno.json" with { type: "json" };
import {
  markdownSettings,
  parseFlags,
  renderHelp,
  resolveScriptArgs,
  shownDefault,
} from "../lib/cli_args.ts";
import { COMMANDS, flagName, GROUPS } from "../lib/config.ts";
import { int } from "../lib/config_spec.ts";
import { assertOneLineError, runCli } from "./cli_utils.ts";

const title = (g: string) => `${g[0].toUpperCase()}${g.slice(1)}:`;

Deno.test("every command's --help: its own flags only, grouped in one order, true defaults, an example", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_help_" });
  try {
    for (const [name, cmd] of Object.entries(COMMANDS)) {
      const r = await runCli([name, "--help"], dir);
      assert.equal(r.code, 0, r.stderr);
      const help = r.stdout;
      assert.ok(help.startsWith(`${name}: ${cmd.summary}\n`), `${name}: summary first`);
      assert.match(help, new RegExp(`\\nExample:\\n  deno task ${name} `), `${name}: example`);
      // Groups appear in the one fixed order.
      const at = GROUPS.map((g) => help.indexOf(`\n${title(g)}\n`)).filter((i) => i >= 0);
      assert.deepEqual(at, [...at].sort((a, b) => a - b), `${name}: group order`);
      // Every own flag, in its group, with its default as the run uses it.
      const flags = [...help.matchAll(/^ {2}(--[a-z0-9-]+)/gm)].map((m) => m[1]);
      const own = Object.keys(cmd.fields).map((k) => `--${flagName(k)}`);
      assert.deepEqual(
        flags.filter((f) => f !== "--config").sort(),
        own.sort(),
        `${name}: exactly its own flags`,
      );
      for (const [k, spec] of Object.entries(cmd.fields)) {
        const pos = help.search(new RegExp(`^ {2}--${flagName(k)}[ /]`, "m"));
        assert.ok(pos >= 0, `${name}: --${flagName(k)} missing`);
        const line = help.slice(pos).split(/\n {2}-|\n\n/)[0].replace(/\s+/g, " ");
        const groupAbove = GROUPS.map((g) => [g, help.lastIndexOf(`\n${title(g)}\n`, pos)] as const)
          .sort((a, b) => b[1] - a[1])[0][0];
        assert.equal(groupAbove, spec.group, `${name} --${flagName(k)} outside its group`);
        const def = shownDefault(spec);
        if (def !== undefined) assert.ok(line.includes(`(default: ${def})`), `${name}: ${line}`);
        if (spec.required) assert.ok(line.includes("(required)"), `${name}: ${line}`);
      }
      if ("download" in cmd.fields) {
        assert.match(
          help.replace(/\s+/g, " "),
          / --download\/--no-download download missing [^()]*\(checksums pinned\) \(default: true\)/,
          name,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --help: no KD flags, and the defaults train really uses for --out and --student-out", async () => {
  const r = await runCli(["train", "--help"], Deno.cwd());
  assert.equal(r.code, 0, r.stderr);
  for (
    const kd of [
      "--teacher",
      "--temperature",
      "--gamma",
      "--alpha",
      "--ce-weight",
      "--relevance",
      "--response",
    ]
  ) {
    assert.ok(!r.stdout.includes(`  ${kd} `), `train --help lists ${kd}`);
  }
  const flat = r.stdout.replace(/\s+/g, " ");
  assert.match(flat, /--out <dir> .*\(default: runs\/train_to_<student>_<time>\)/);
  assert.match(flat, /--student-out <file\.onnx> .*\(default: weights\/<data>_<student>\.onnx\)/);
});

Deno.test("--version prints deno.json's version; no command prints the command list", async () => {
  const v = await runCli(["--version"], Deno.cwd());
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), `oracle-kd ${denoConfig.version}`);
  const o = await runCli([], Deno.cwd());
  assert.equal(o.code, 0, o.stderr);
  for (const name of Object.keys(COMMANDS)) assert.match(o.stdout, new RegExp(`^ {2}${name} `, "m"));
  assertOneLineError(
    await runCli(["distil"], Deno.cwd()),
    /unknown command "distil" \(did you mean distill\?\)/,
  );
});

Deno.test("--config works on every command (JSON or YAML; errors in the file name the file)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_cfg_" });
  try {
    await Deno.writeTextFile(path.join(dir, "garbage.onnx"), "hello");
    const cases: [string, string, string, RegExp][] = [
      ["distill", "d.yaml", "batch_size: 0\n", /^error: d\.yaml: --batch-size must be >= 1, got 0$/],
      [
        "train",
        "t.yml",
        "temperature: 3\n",
        /^error: t\.yml: unknown setting "temperature" \(a setting of distill\)/,
      ],
      // The model comes from the file: the error is about the file it names.
      [
        "test",
        "e.yaml",
        "model: garbage.onnx\ndata: synthetic\n",
        /^error: garbage\.onnx: not an ONNX model/,
      ],
      [
        "convert",
        "c.json",
        '{"from": "missing.pth", "out": "x.onnx"}',
        /^error: missing\.pth: cannot read the file/,
      ],
      [
        "analyze",
        "a.yaml",
        "teacher: resnet56\ndata: synthetic\nrec_num: 0\n",
        /^error: a\.yaml: --rec-num must be >= 1, got 0$/,
      ],
      [
        "demo",
        "m.yaml",
        "epochs: 1\nengine: gpu\n",
        /^error: m\.yaml: --engine must be one of tfjs, onnxruntime, webgpu, auto; got "gpu"$/,
      ],
    ];
    for (const [command, file, body, why] of cases) {
      await Deno.writeTextFile(path.join(dir, file), body);
      assertOneLineError(await runCli([command, "--config", file], dir), why);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Table cells with the padding deno fmt adds removed (separator rows become "---"). */
function cells(table: string): string[][] {
  return table.trim().split("\n").map((row) =>
    row.trim().replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((c) => c.trim().replace(/^-+$/, "---"))
  );
}

Deno.test("README: the settings tables are the field specs' and the library example is examples/library.ts", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const block = (name: string) => {
    const open = `<!-- ${name} -->`, close = `<!-- /${name} -->`;
    const a = readme.indexOf(open), b = readme.indexOf(close);
    assert.ok(a >= 0 && b > a, `README.md lacks the ${name} block`);
    return readme.slice(a + open.length, b);
  };
  for (const [name, spec] of Object.entries(COMMANDS)) {
    assert.deepEqual(
      cells(block(`settings:${name}`)),
      cells(markdownSettings(spec)),
      `README's ${name} table is stale: run deno run -A tools/readme_settings.ts`,
    );
  }
  const example = await Deno.readTextFile(new URL("../examples/library.ts", import.meta.url));
  assert.equal(block("example:library").trim(), "```ts\n" + example.trim() + "\n```");
});

Deno.test("a script's help and error hint name how it is run: its spec's usage, else its deno task", async () => {
  const fields = { rounds: int("run", "rounds", 3, { min: 1 }) };
  const script = { summary: "s", example: "deno run -A tools/x.ts", fields, usage: "deno run -A tools/x.ts" };
  assert.match(renderHelp("x", script), /\nUsage: deno run -A tools\/x\.ts \[options\]\n/);
  assert.ok(!renderHelp("x", script).includes("deno task"));
  await assert.rejects(
    () => resolveScriptArgs("x", script, ["--round", "2"]),
    /^ConfigError: unknown option --round for x \(did you mean --rounds\?\); `deno run -A tools\/x\.ts --help` lists them$/,
  );
  // Without a usage (the CLI's commands, bench): the deno task.
  const task = { summary: "s", example: "deno task x", fields };
  assert.match(renderHelp("x", task), /\nUsage: deno task x \[options\]\n/);
  assert.throws(() => parseFlags("x", fields, ["--round", "2"]), /; `deno task x --help` lists them$/);
});

Deno.test("the scripts' --help and bad-flag hint name a deno task that runs them, else `deno run -A <script>`", async () => {
  const tasks: Record<string, string> = denoConfig.tasks;
  const dec = new TextDecoder();
  for (const script of ["bench/bench.ts", "bench/memory.ts", "tools/profile_train_step.ts"]) {
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, ...args],
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const help = await run("--help");
    assert.equal(help.code, 0, help.stderr);
    const usage = help.stdout.match(/^Usage: (.+) \[options\]$/m)?.[1];
    assert.ok(usage, `${script}: no usage line:\n${help.stdout}`);
    const task = usage.match(/^deno task (\S+)$/)?.[1];
    if (task !== undefined) assert.equal(tasks[task], `deno run -A ${script}`, `${script}: ${usage}`);
    else assert.equal(usage, `deno run -A ${script}`);
    const bad = await run("--no-such-flag");
    assert.equal(bad.code, 2, bad.stderr);
    assert.ok(bad.stderr.trim().endsWith(`\`${usage} --help\` lists them`), `${script}: ${bad.stderr}`);
  }
});
