/**
 * Command-line flags and help, generated from a command's field table (see config.ts): the one
 * way every command parses `--flag value`, `--flag=value`, `--bool`/`--no-bool`, refuses unknown
 * flags with a suggestion, and renders grouped help with true defaults and an example.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./cli_args.ts";
 * import { COMMANDS } from "./config.ts";
 * const p = parseFlags("distill", COMMANDS.distill.fields, ["--epochs", "3", "--no-download", "--gamma=0"]);
 * console.log(p.values); // { epochs: "3", download: false, gamma: "0" }
 * ```
 * @module
 */

import {
  type CommandSpec,
  ConfigError,
  type ConfigOf,
  type FieldSpec,
  type FieldTable,
  flagName,
  GROUPS,
  nearest,
  resolveFields,
} from "./config.ts";
import { readSettingsFile } from "./config_file.ts";

/** What the command line asked for. */
export interface ParsedFlags {
  /** Raw flag values by field name (strings, or booleans for `--x`/`--no-x`). */
  values: Record<string, unknown>;
  /** `--config <file>`, if given. */
  config?: string;
  /** `-h` / `--help` was given. */
  help: boolean;
}

/**
 * Parses `args` against a command's fields. Values stay raw (strings) for the config layer to
 * check; unknown flags and missing values throw a {@link ConfigError} naming them. The hint to
 * list the flags names `usage --help` (`usage`: how the command is invoked; its deno task unless
 * given).
 *
 * @example
 * ```ts
 * import { parseFlags } from "./cli_args.ts";
 * import { COMMANDS } from "./config.ts";
 * try { parseFlags("train", COMMANDS.train.fields, ["--epoch", "3"]); } catch (e) { console.log((e as Error).message); }
 * // unknown option --epoch for train (did you mean --epochs?); `deno task train --help` lists them
 * ```
 */
export function parseFlags(
  command: string,
  fields: FieldTable,
  args: readonly string[],
  usage = `deno task ${command}`,
): ParsedFlags {
  const byFlag = new Map(Object.entries(fields).map(([k, spec]) => [flagName(k), [k, spec] as const]));
  const out: ParsedFlags = { values: {}, help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-h" || arg === "--help") {
      out.help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      throw new ConfigError(
        `unexpected argument "${arg}" for ${command}; settings are flags like --data <name>`,
      );
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const next = () => {
      if (inline !== undefined) return inline;
      const v = args[i + 1];
      if (v === undefined || (v.startsWith("--") && v.length > 2 && !/^--?\d/.test(v))) {
        throw new ConfigError(`--${name} needs a value`);
      }
      i++;
      return v;
    };
    if (name === "config") {
      out.config = next();
      continue;
    }
    const hit = byFlag.get(name);
    if (hit) {
      const [field, spec] = hit;
      if (spec.type === "boolean") {
        if (inline !== undefined) out.values[field] = inline;
        else if (args[i + 1] === "true" || args[i + 1] === "false") out.values[field] = args[++i] === "true";
        else out.values[field] = true;
      } else {
        out.values[field] = next();
      }
      continue;
    }
    const negated = name.startsWith("no-") ? byFlag.get(name.slice(3)) : undefined;
    if (negated && negated[1].type === "boolean" && inline === undefined) {
      out.values[negated[0]] = false;
      continue;
    }
    const near = nearest(name, [...byFlag.keys(), "config", "help"]);
    throw new ConfigError(
      `unknown option --${name} for ${command}${near ? ` (did you mean --${near}?)` : ""}; ` +
        `\`${usage} --help\` lists them`,
    );
  }
  return out;
}

/** The left column of a field's help line. */
function usage(field: string, spec: FieldSpec<unknown>): string {
  const flag = `--${flagName(field)}`;
  if (spec.type === "boolean") return `${flag}/--no-${flagName(field)}`;
  const ph = spec.choices ? spec.choices.join("|") : spec.placeholder ??
    (spec.type === "integer"
      ? "n"
      : spec.type === "number"
      ? "x"
      : spec.type.endsWith("[]")
      ? "list"
      : "value");
  return `${flag} <${ph}>`;
}

/**
 * How help shows a field's default.
 *
 * @example
 * ```ts
 * import { shownDefault } from "./cli_args.ts";
 * import { DISTILL_FIELDS } from "./config.ts";
 * console.log(shownDefault(DISTILL_FIELDS.schedule), shownDefault(DISTILL_FIELDS.out)); // 150,180,210 runs/<teacher>_to_<student>_<time>
 * ```
 */
export function shownDefault(spec: FieldSpec<unknown>): string | undefined {
  if (spec.required) return undefined;
  if (spec.defaultText) return spec.defaultText;
  const d = spec.default;
  if (Array.isArray(d)) return d.length ? d.join(",") : undefined;
  if (d === "") return undefined;
  return String(d);
}

function wrap(left: string, right: string, width: number, total: number): string[] {
  const lines: string[] = [];
  let cur = "";
  for (const word of right.split(" ")) {
    if (cur && width + cur.length + 1 + word.length > total) {
      lines.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  lines.push(cur);
  const pad = " ".repeat(width);
  if (left.length + 2 > width) return [`  ${left}`, ...lines.map((l) => pad + l)];
  return lines.map((l, i) => (i === 0 ? `  ${left}`.padEnd(width) : pad) + l);
}

/** How a command is invoked, without options: its spec's `usage`, else its deno task. */
function invocation(command: string, spec: CommandSpec): string {
  return spec.usage ?? `deno task ${command}`;
}

/**
 * A command's help: summary, usage, its flags grouped (data, model, teacher, oracle, loss,
 * optimiser, run, engine) with their true defaults, and an example.
 *
 * @example
 * ```ts
 * import { renderHelp } from "./cli_args.ts";
 * import { COMMANDS } from "./config.ts";
 * const h = renderHelp("demo", COMMANDS.demo);
 * console.log(h.includes("--epochs <n>"), h.includes("(default: 3)")); // true true
 * ```
 */
export function renderHelp(command: string, spec: CommandSpec, total = 100): string {
  const rows: [string, string, string][] = Object.entries(spec.fields).map(([k, s]) => {
    const def = shownDefault(s);
    return [
      s.group,
      usage(k, s),
      `${s.doc}${s.required ? " (required)" : def !== undefined ? ` (default: ${def})` : ""}`,
    ];
  });
  rows.push(
    [
      "run",
      "--config <file>",
      "read settings from a JSON or YAML file (kebab-, camel- or snake_case keys; flags win)",
    ],
    ["run", "-h, --help", "show this help"],
  );
  const width = Math.min(32, Math.max(...rows.map(([, l]) => l.length)) + 4);
  const lines = [`${command}: ${spec.summary}`, "", `Usage: ${invocation(command, spec)} [options]`];
  for (const g of GROUPS) {
    const inGroup = rows.filter(([group]) => group === g);
    if (!inGroup.length) continue;
    lines.push("", `${g[0].toUpperCase()}${g.slice(1)}:`);
    for (const [, left, right] of inGroup) lines.push(...wrap(left, right, width, total));
  }
  lines.push("", "Example:", `  ${spec.example}`);
  return lines.join("\n") + "\n";
}

/**
 * The top-level help: every command with its summary.
 *
 * @example
 * ```ts
 * import { renderOverview } from "./cli_args.ts";
 * import { COMMANDS } from "./config.ts";
 * console.log(renderOverview(COMMANDS, "0.1.0").split("\n")[0]); // oracle-kd 0.1.0: knowledge distillation from an explainable oracle teacher (Lee et al., BMVC 2023)
 * ```
 */
export function renderOverview(commands: Readonly<Record<string, CommandSpec>>, version: string): string {
  const w = Math.max(10, ...Object.keys(commands).map((c) => c.length)) + 2;
  return [
    `oracle-kd ${version}: knowledge distillation from an explainable oracle teacher (Lee et al., BMVC 2023)`,
    "",
    "Usage: deno task <command> [options]   (deno run -A cli.ts <command> [options])",
    "",
    "Commands:",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(w)}${c.summary}`),
    "",
    "Options:",
    `  ${"--version".padEnd(w)}print the version`,
    `  ${"-h, --help".padEnd(w)}this help; \`deno task <command> --help\` shows a command's options`,
    "",
  ].join("\n");
}

/**
 * A command's settings as a Markdown table (flag, default, meaning), grouped like its help; the
 * README's settings tables are these (`deno run -A tools/readme_settings.ts` rewrites them).
 *
 * @example
 * ```ts
 * import { markdownSettings } from "./cli_args.ts";
 * import { COMMANDS } from "./config.ts";
 * console.log(markdownSettings(COMMANDS.demo).split("\n")[2]); // | optimiser | `--epochs <n>` | `3` | epochs of each stage |
 * ```
 */
export function markdownSettings(spec: CommandSpec): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const rows = ["| group | flag | default | meaning |", "| --- | --- | --- | --- |"];
  for (const g of GROUPS) {
    let first = true;
    for (const [k, s] of Object.entries(spec.fields)) {
      if (s.group !== g) continue;
      const def = shownDefault(s);
      const shown = s.required
        ? "required"
        : def === undefined
        ? ""
        : s.defaultText
        ? esc(def)
        : `\`${esc(def)}\``;
      rows.push(`| ${first ? g : ""} | \`${esc(usage(k, s))}\` | ${shown} | ${esc(s.doc)} |`);
      first = false;
    }
  }
  return rows.join("\n");
}

/**
 * A script's settings from its flags and `--config` file (flags win), for the scripts beside
 * the CLI (bench, memory, profile_train_step): null after printing the help for `-h`. Errors are
 * {@link ConfigError}s; one found in the settings file names the file. A script without a deno
 * task gives its invocation as the spec's `usage` (e.g. `deno run -A tools/x.ts`), which its help
 * and error hints then name.
 *
 * @example
 * ```ts
 * import { int } from "./config_spec.ts";
 * import { resolveScriptArgs } from "./cli_args.ts";
 * const fields = { rounds: int("run", "rounds", 3, { min: 1 }) };
 * const o = await resolveScriptArgs("bench", { summary: "s", example: "e", fields }, ["--rounds", "2"]);
 * console.log(o?.rounds); // 2
 * ```
 */
export async function resolveScriptArgs<F extends FieldTable>(
  command: string,
  spec: CommandSpec & { fields: F },
  args: readonly string[],
): Promise<ConfigOf<F> | null> {
  const parsed = parseFlags(command, spec.fields, args, invocation(command, spec));
  if (parsed.help) {
    console.log(renderHelp(command, spec));
    return null;
  }
  let fromFile: Record<string, unknown> = {};
  if (parsed.config !== undefined) {
    fromFile = await readSettingsFile(parsed.config);
    try {
      resolveFields(spec.fields, fromFile);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      throw new ConfigError(`${parsed.config}: ${e.message}`);
    }
  }
  return resolveFields(spec.fields, fromFile, parsed.values);
}

/**
 * {@link resolveScriptArgs} over `Deno.args` for a script's entry point: exits 0 after `--help`
 * and 2 with one line naming the script and the problem on a bad flag or settings file.
 *
 * @example
 * ```ts ignore
 * import { scriptSettings } from "./cli_args.ts";
 * const o = await scriptSettings("bench", SPEC);
 * ```
 */
export async function scriptSettings<F extends FieldTable>(
  command: string,
  spec: CommandSpec & { fields: F },
): Promise<ConfigOf<F>> {
  let o;
  try {
    o = await resolveScriptArgs(command, spec, Deno.args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`${command}: ${e.message}`);
    Deno.exit(2);
  }
  if (o === null) Deno.exit(0);
  return o;
}
