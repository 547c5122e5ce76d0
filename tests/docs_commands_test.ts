/**
 * Every `deno task ...` command in README.md, data/README.md and the notebooks, run the way
 * it is written, in a smoke form, so that a documented command cannot break unnoticed.
 *
 * How each is reduced:
 * - `train`, `distill`, `demo`: the documented command with `--check` appended: the real
 *   flag parsing, config validation (schema) and input checks run, then the command prints
 *   `check passed: <settings>` and exits 0 instead of training. It runs in a scratch copy of
 *   the repository (symlinks) whose `runs/mnist_teacher`, `runs/mnist_teacher_stage2` and
 *   `runs/mnist_classifier` point at the shipped models in data/ (which are what those
 *   documented commands produced, data/README.md). Any other run that a documented
 *   `train --config C --run R` creates is stood in for by `R/config.json` = C (what train writes
 *   first) and `R/model` = the shipped model of the same kind: `--check` of a later command
 *   reads that config and checks that the model files exist. Nothing is written to the
 *   repository.
 * - `test`, `check`, `bench`, `bench:memory`: only checked to be tasks of deno.json (running
 *   the test suite inside itself, or minutes of benchmarks, is no smoke test).
 * - prose abbreviations (`deno task train ... --resume`) and mentions of a task by name in
 *   running text (an inline `deno task distill` without flags): checked to name a task.
 *   Commands in fenced code blocks always run.
 */
import { assert, assertEquals, assertGreater, assertStringIncludes } from "@std/assert";
import { commandOutput, noiseLines, REPO, runTask } from "./cli_helpers.ts";

/** The text of every source of documented commands (notebooks: all cells). */
async function documents(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of ["README.md", "data/README.md"]) out[f] = await Deno.readTextFile(`${REPO}/${f}`);
  for await (const e of Deno.readDir(`${REPO}/notebooks`)) {
    if (!e.name.endsWith(".ipynb")) continue;
    const nb = JSON.parse(await Deno.readTextFile(`${REPO}/notebooks/${e.name}`));
    out[`notebooks/${e.name}`] = nb.cells
      .map((c: { source: string | string[] }) => [c.source].flat().join(""))
      .join("\n\n");
  }
  return out;
}

/**
 * The `deno task` commands of a markdown-ish text: lines of fenced code blocks (with `\`
 * continuations joined, `#` comments dropped) and inline code spans.
 */
export function extractCommands(text: string): string[] {
  const commands: string[] = [];
  const rest = text.replace(/```[a-z]*\n([\s\S]*?)```/g, (_, body: string) => {
    const joined = body.replace(/\s*\\\n\s*/g, " ");
    for (const line of joined.split("\n")) {
      const cmd = line.replace(/\s#.*$/, "").trim();
      if (cmd.startsWith("deno task ")) commands.push(cmd);
    }
    return "";
  });
  for (const m of rest.matchAll(/`(deno task [^`]+)`/g)) {
    const cmd = m[1].trim();
    commands.push(cmd.split(/\s+/).length === 3 ? `${cmd} ...` : cmd);
  }
  return commands;
}

const tasks = Object.keys(JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`)).tasks);
const RUNNABLE = ["train", "distill", "demo"];

/** The run directory a documented `train` command writes, and its config file. */
function trainRun(words: string[]): { run: string; config: string } | null {
  const flag = (name: string) => words[words.indexOf(`--${name}`) + 1];
  if (words[2] !== "train" || !words.includes("--config")) return null;
  const config = flag("config");
  const name = config.split("/").pop()!.replace(/\.json$/, "");
  return { run: words.includes("--run") ? flag("run") : `runs/${name}`, config };
}

/** Stands in for the run of each documented train command (see the module doc). */
async function standInRuns(dir: string, commands: string[][]): Promise<void> {
  for (const words of commands) {
    const t = trainRun(words);
    if (!t || (await Deno.lstat(`${dir}/${t.run}`).then(() => true, () => false))) continue;
    const config = JSON.parse(await Deno.readTextFile(`${REPO}/${t.config}`));
    await Deno.mkdir(`${dir}/${t.run}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${t.run}/config.json`, JSON.stringify(config));
    await Deno.symlink(`${REPO}/data/${config.kind}/model`, `${dir}/${t.run}/model`);
  }
}

/** A scratch copy of the repository: symlinks, plus runs/ pointing at the shipped models. */
async function scratchRepo(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "docs-commands-" });
  for await (const e of Deno.readDir(REPO)) {
    if (e.name === "runs" || e.name === ".git") continue;
    await Deno.symlink(`${REPO}/${e.name}`, `${dir}/${e.name}`);
  }
  await Deno.mkdir(`${dir}/runs`);
  for (
    const [run, shipped] of [
      ["mnist_teacher", "teacher"],
      ["mnist_teacher_stage2", "teacher"],
      ["mnist_classifier", "classifier"],
    ]
  ) await Deno.symlink(`${REPO}/data/${shipped}`, `${dir}/runs/${run}`);
  return dir;
}

Deno.test("the extraction finds fenced, continued and inline commands", () => {
  const md = "run `deno task demo` or\n```sh\n# note\ndeno task train -- --config a.json \\\n" +
    "  --run r   # comment\nls\n```\nthen `deno task test`.";
  assertEquals(extractCommands(md), [
    "deno task train -- --config a.json --run r",
    "deno task demo ...",
    "deno task test ...",
  ]);
});

Deno.test("every documented deno task command works (smoke form, see the module doc)", async () => {
  const docs = await documents();
  const found = Object.entries(docs).flatMap(([file, text]) =>
    extractCommands(text).map((cmd) => ({ file, cmd }))
  );
  const unique = [...new Map(found.map((f) => [f.cmd, f])).values()];
  const ran = new Set<string>();
  const dir = await scratchRepo();
  await standInRuns(dir, unique.map(({ cmd }) => cmd.split(/\s+/)));
  try {
    for (const { file, cmd } of unique) {
      const words = cmd.split(/\s+/).filter((w) => w !== "...");
      const task = words[2];
      assert(tasks.includes(task), `${file}: "${cmd}" names no task of deno.json`);
      if (!RUNNABLE.includes(task) || cmd.includes("...")) continue;
      const r = await runTask([...words.slice(2), "--check"], { cwd: dir });
      assertEquals(r.code, 0, `${file}: ${cmd} --check\n${commandOutput(r)}`);
      assertStringIncludes(r.stdout, "check passed: ", `${file}: ${cmd}`);
      assertEquals(noiseLines(r), [], `${file}: ${cmd}`);
      ran.add(task);
      console.log(`ok: ${cmd} --check (${file})`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // The documentation shows all three commands; a parser change that hid them would fail here.
  assertEquals([...ran].sort(), [...RUNNABLE].sort());
  assertGreater(unique.length, 6);
});
