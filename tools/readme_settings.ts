/**
 * Rewrites the README's generated parts from their sources: each command's settings table
 * (between `<!-- settings:<command> -->` and `<!-- /settings:<command> -->`, from the field specs
 * in lib/config.ts) and the library example (between `<!-- example:library -->` and
 * `<!-- /example:library -->`, from examples/library.ts), then formats the README.
 * tests/cli_help_test.ts fails when the README and the sources disagree.
 *
 * Run: `deno run -A tools/readme_settings.ts`
 * @module
 */
import { markdownSettings } from "../lib/cli_args.ts";
import { COMMANDS } from "../lib/config.ts";

const root = new URL("../", import.meta.url);
const readme = new URL("README.md", root);
let text = await Deno.readTextFile(readme);

/** Replaces the text between two markers, which must exist. */
function fill(name: string, body: string): void {
  const open = `<!-- ${name} -->`, close = `<!-- /${name} -->`;
  const a = text.indexOf(open), b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`README.md has no ${open} ... ${close} block`);
  text = `${text.slice(0, a + open.length)}\n\n${body}\n\n${text.slice(b)}`;
}

for (const [name, spec] of Object.entries(COMMANDS)) {
  if (text.includes(`<!-- settings:${name} -->`)) fill(`settings:${name}`, markdownSettings(spec));
}
const example = await Deno.readTextFile(new URL("examples/library.ts", root));
fill("example:library", "```ts\n" + example.trimEnd() + "\n```");
await Deno.writeTextFile(readme, text);
const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", "README.md"], cwd: root }).output();
if (!fmt.success) throw new Error("deno fmt README.md failed");
