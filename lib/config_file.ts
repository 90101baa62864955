/**
 * Settings files for `--config`: JSON (`.json`) or YAML (anything else; YAML also reads JSON).
 * Every error is one line naming the file, and for a syntax error the line and column.
 *
 * @example
 * ```ts
 * import { parseSettings } from "./config_file.ts";
 * console.log(parseSettings("epochs: 3\nbatch_size: 32\n", "run.yaml")); // { epochs: 3, batch_size: 32 }
 * ```
 * @module
 */

import { parseYamlDocument } from "./deps.ts";
import { ConfigError } from "./config.ts";

/**
 * Parses the text of a settings file into a plain key/value object.
 *
 * @example
 * ```ts
 * import { parseSettings } from "./config_file.ts";
 * try { parseSettings("epochs: 3\nlr: [0.1\n", "run.yaml"); } catch (e) { console.log((e as Error).message.split(":").slice(0, 2).join(":")); }
 * // run.yaml:3
 * ```
 */
export function parseSettings(text: string, file: string): Record<string, unknown> {
  let parsed: unknown;
  if (/\.json$/i.test(file)) {
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${file}: cannot read settings (${(e as Error).message.split("\n")[0]})`);
    }
  } else {
    const doc = parseYamlDocument(text, { prettyErrors: true, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const at = err.linePos?.[0];
      const where = at ? `${file}:${at.line}:${at.col}` : file;
      throw new ConfigError(
        `${where}: YAML syntax error: ${
          err.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")
        }`,
      );
    }
    parsed = doc.toJS();
    if (parsed === null || parsed === undefined) parsed = {};
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      `${file}: settings must be a ${
        /\.json$/i.test(file) ? 'JSON object like {"epochs": 10}' : "mapping like `epochs: 10`"
      }`,
    );
  }
  return parsed as Record<string, unknown>;
}

/**
 * Reads and parses a settings file; a missing or unreadable file is one line naming it.
 *
 * @example
 * ```ts
 * import { readSettingsFile } from "./config_file.ts";
 * try { await readSettingsFile("missing.yaml"); } catch (e) { console.log((e as Error).message.startsWith("missing.yaml: cannot read settings")); } // true
 * ```
 */
export async function readSettingsFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read settings (${(e as Error).message.split("\n")[0]})`);
  }
  return parseSettings(text, file);
}
