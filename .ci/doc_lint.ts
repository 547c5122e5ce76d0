/**
 * `deno doc --lint` for CI, with one documented exception.
 *
 * Deno 2.9.6 reports `private-type-ref` when a public signature names a type of an npm
 * dependency (e.g. tfjs' `Tensor4D`), because npm packages resolve to `file:` modules under
 * node_modules. Deno fixed this upstream (denoland/deno#34339: such diagnostics are dropped for
 * types of other packages); until our pinned Deno has the fix, this script drops exactly those:
 * a `private-type-ref` whose referenced declaration is NOT a line of this repository's own
 * sources. Every other diagnostic (missing docs, missing types, private types of our own
 * modules) fails the check.
 *
 * Usage: `deno run --allow-run --allow-read .ci/doc_lint.ts mod.ts [more entry points]`.
 * Prints the remaining diagnostics and their count; exits 1 if there are any.
 * @module
 */

const entries = Deno.args.length > 0 ? Deno.args : ["mod.ts"];
const out = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--lint", ...entries],
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "piped",
}).output();
const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);

/** The diagnostic blocks: from one `error[...]` line to the next. */
const blocks = text.split(/\n(?=error\[)/).filter((b) => b.startsWith("error["));

const sourceCache = new Map<string, string[]>();
async function repoLines(path: string): Promise<string[]> {
  if (!sourceCache.has(path)) sourceCache.set(path, (await Deno.readTextFile(path)).split("\n"));
  return sourceCache.get(path)!;
}

/** Files of this repository that a referenced declaration could live in. */
async function repoSources(): Promise<string[]> {
  const files: string[] = ["mod.ts"];
  async function walk(dir: string) {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (p.endsWith(".ts")) files.push(p);
    }
  }
  await walk("lib");
  return files;
}
const sources = await repoSources();

/** True when the block's "this is the referenced type" line is a line of our own sources. */
async function referencesOwnType(block: string): Promise<boolean> {
  const m = block.match(/\n\s*(\d+) \| (.*)\n\s*\|\s*-+ this is the referenced type/);
  if (!m) return true; // cannot tell: keep the diagnostic
  const lineNo = Number(m[1]);
  const line = m[2].trimEnd();
  for (const f of sources) {
    const lines = await repoLines(f);
    if (lines[lineNo - 1]?.trimEnd() === line) return true;
  }
  return false;
}

const kept: string[] = [];
let dropped = 0;
for (const b of blocks) {
  if (b.startsWith("error[private-type-ref]") && !(await referencesOwnType(b))) dropped++;
  else kept.push(b.trimEnd());
}
if (kept.length > 0) console.log(kept.join("\n\n"));
console.log(
  `deno doc --lint ${entries.join(" ")}: ${kept.length} problem(s); ` +
    `${dropped} private-type-ref to npm dependencies' types ignored (denoland/deno#34339)`,
);
if (blocks.length === 0 && !out.success) {
  console.log(text);
  Deno.exit(1);
}
Deno.exit(kept.length > 0 ? 1 : 0);
