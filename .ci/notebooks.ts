/**
 * Executes notebooks headless with the Deno Jupyter kernel and checks their outputs.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-run --allow-net --allow-sys \
 *     .ci/notebooks.ts \
 *     [--out-dir runs/notebooks] [notebooks/01_x.ipynb ...]
 *
 * Without notebook arguments it runs every `notebooks/*.ipynb`. Executed copies are written to
 * the output folder (default `runs/notebooks`); the sources are never modified. A notebook
 * passes when every code cell ran, no cell raised, no stream output carries start-up noise
 * (see {@link NOISE_PATTERNS}: an `error:` line, Deno's XDG_RUNTIME_DIR warning, tfjs' banner),
 * and each `// expect: KIND` comment in a
 * cell is matched by one `display_data` output of that kind in the same cell (KIND: plotly,
 * image, table, markdown; see {@link EXPECT_MIME}). A cell that calls `show(` must carry at
 * least one such comment, and a notebook must expect at least one output. The executed copy
 * must be at most {@link MAX_NOTEBOOK_BYTES}, and its nbconvert HTML export (`NAME.html` next
 * to it), opened in headless Chromium with every network request blocked, must draw each Plotly
 * output (one `.js-plotly-plot` with a `.main-svg` per figure). Prints one result line per
 * notebook and exits 1 if any notebook failed. Set `RDD_FAST=1` for the quick profile.
 * @module
 */
import { withChromiumPage } from "../lib/figures/chromium.ts";

/** The MIME type that each `// expect: KIND` comment requires in a cell's display outputs. */
export const EXPECT_MIME: Readonly<Record<string, string>> = {
  plotly: "application/vnd.plotly.v1+json",
  image: "image/png",
  table: "text/html",
  markdown: "text/markdown",
};

/** The part of an nbformat-4 notebook this checker reads. */
export interface NotebookJson {
  /** The cells, in order. */
  cells: {
    cell_type: string;
    source: string | string[];
    execution_count?: number | null;
    outputs?: {
      output_type: string;
      data?: Record<string, unknown>;
      ename?: string;
      evalue?: string;
      /** Stream outputs: "stdout" or "stderr", and their text. */
      name?: string;
      text?: string | string[];
    }[];
  }[];
}

/**
 * Lines that must not appear in a notebook's stream outputs: nothing failed, so a user must not
 * read "error" (Deno's WebGPU probe warning) or tfjs' "install our node backend" banner.
 */
export const NOISE_PATTERNS: readonly RegExp[] = [
  /^error:/m,
  /XDG_RUNTIME_DIR/,
  /tfjs-node|install our node backend/,
];

/** The largest executed notebook accepted: 5 MB (5,000,000 bytes). */
export const MAX_NOTEBOOK_BYTES = 5_000_000;

const joined = (s: string | string[]) => (Array.isArray(s) ? s.join("") : s);

/**
 * The output kinds a cell's source expects, one entry per `// expect: KIND` comment, in order.
 * Throws RangeError on an unknown KIND.
 */
export function expectedKinds(source: string): string[] {
  const kinds = [...source.matchAll(/^\s*\/\/\s*expect:\s*(\S+)\s*$/gm)].map((m) => m[1]);
  for (const k of kinds) {
    if (!(k in EXPECT_MIME)) {
      throw new RangeError(
        `expect comment must name one of ${Object.keys(EXPECT_MIME)}, got "${k}"`,
      );
    }
  }
  return kinds;
}

/**
 * Problems of an executed notebook under the rules in this module's doc; empty when it passes.
 * @param nb the parsed executed notebook.
 */
export function checkNotebook(nb: NotebookJson): string[] {
  const problems: string[] = [];
  let expectations = 0;
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    const src = joined(cell.source);
    if (src.trim() === "") return;
    const where = `cell ${i}`;
    const outputs = cell.outputs ?? [];
    if (cell.execution_count == null) problems.push(`${where}: was not executed`);
    for (const o of outputs) {
      if (o.output_type === "error") problems.push(`${where}: raised ${o.ename}: ${o.evalue}`);
      const text = o.output_type === "stream" ? joined(o.text ?? "") : "";
      const noise = NOISE_PATTERNS.find((re) => re.test(text));
      if (noise) problems.push(`${where}: ${o.name ?? "stream"} output matches ${noise}`);
    }
    let kinds: string[];
    try {
      kinds = expectedKinds(src);
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
      return;
    }
    expectations += kinds.length;
    if (/\bshow\(/.test(src) && kinds.length === 0) {
      problems.push(`${where}: calls show( but has no "// expect: KIND" comment`);
    }
    for (const kind of new Set(kinds)) {
      const want = kinds.filter((k) => k === kind).length;
      const got = outputs.filter((o) =>
        o.output_type === "display_data" && o.data !== undefined && EXPECT_MIME[kind] in o.data
      ).length;
      if (got < want) {
        problems.push(`${where}: expected ${want} ${kind} output(s), got ${got}`);
      }
    }
  });
  if (expectations === 0) problems.push('notebook has no "// expect: KIND" comment');
  return problems;
}

/** The problem of an executed notebook of `bytes` bytes, or undefined when it is small enough. */
export function sizeProblem(bytes: number, limit = MAX_NOTEBOOK_BYTES): string | undefined {
  return bytes > limit
    ? `executed notebook is ${(bytes / 1e6).toFixed(2)} MB, more than ${limit / 1e6} MB`
    : undefined;
}

/** The number of Plotly figures among the `display_data` outputs of `nb`. */
export function plotlyOutputCount(nb: NotebookJson): number {
  return nb.cells.flatMap((c) => c.outputs ?? []).filter((o) =>
    o.output_type === "display_data" && o.data !== undefined && EXPECT_MIME.plotly in o.data
  ).length;
}

/**
 * Opens the HTML file `htmlPath` in headless Chromium with every non-`file:`/`data:`/`blob:`
 * request aborted (no network), waits up to `timeoutMs` for `expected` drawn plots, and returns
 * the problems (empty when every plot was drawn).
 */
export function renderProblems(
  htmlPath: string,
  expected: number,
  timeoutMs = 60_000,
): Promise<string[]> {
  return withChromiumPage(async (page) => {
    await page.goto(new URL(htmlPath, `file://${Deno.cwd()}/`).href);
    const count = async () =>
      Number(
        await page.evaluate(
          `[...document.querySelectorAll(".js-plotly-plot")].filter((p) => p.querySelector(".main-svg")).length`,
        ),
      );
    const until = performance.now() + timeoutMs;
    while ((await count()) < expected && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const drawn = await count();
    if (drawn >= expected) return [];
    const errors = page.errors.length
      ? ` (page errors: ${page.errors.slice(0, 3).join("; ")})`
      : "";
    return [
      `HTML export drew ${drawn} of ${expected} plot(s) offline in headless Chromium${errors}`,
    ];
  });
}

/** The command prefix that runs nbconvert (Debian's, not a pyenv python that shadows it). */
export async function nbconvertCommand(): Promise<string[]> {
  const exists = async (p: string) => {
    try {
      return (await Deno.stat(p)).isFile;
    } catch {
      return false;
    }
  };
  if (await exists("/usr/bin/jupyter-nbconvert")) return ["/usr/bin/jupyter-nbconvert"];
  if (await exists("/usr/bin/python3")) return ["/usr/bin/python3", "-m", "nbconvert"];
  return ["jupyter-nbconvert"];
}

/**
 * Runs nbconvert with `args` (e.g. `--to notebook --execute ... path`); true when it exited 0.
 * Prints the last stderr lines otherwise.
 */
async function nbconvertRun(nbconvert: string[], args: string[]): Promise<boolean> {
  const [cmd, ...pre] = nbconvert;
  const out = await new Deno.Command(cmd, {
    args: [...pre, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const tail = new TextDecoder().decode(out.stderr).trimEnd().split("\n").slice(-3);
    console.log(`  nbconvert exited with code ${out.code}:\n    ${tail.join("\n    ")}`);
  }
  return out.success;
}

/** Executes `path` into `outDir/name.ipynb` (cells may raise; {@link checkNotebook} reports). */
function execute(path: string, outDir: string, name: string, nbconvert: string[]) {
  return nbconvertRun(nbconvert, [
    "--to",
    "notebook",
    "--execute",
    "--allow-errors",
    "--ExecutePreprocessor.kernel_name=deno",
    "--ExecutePreprocessor.timeout=1800",
    "--output-dir",
    outDir,
    "--output",
    name,
    path,
  ]);
}

/** The size, content and offline-rendering problems of the executed notebook `executed`. */
async function executedProblems(executed: string, nbconvert: string[]): Promise<string[]> {
  const nb = JSON.parse(await Deno.readTextFile(executed)) as NotebookJson;
  const problems = checkNotebook(nb);
  const size = sizeProblem((await Deno.stat(executed)).size);
  if (size) problems.push(size);
  const plots = plotlyOutputCount(nb);
  if (plots === 0) return problems;
  const html = executed.replace(/\.ipynb$/, ".html");
  const [dir, base] = [html.slice(0, html.lastIndexOf("/")) || ".", html.split("/").pop()!];
  if (
    !(await nbconvertRun(nbconvert, [
      "--to",
      "html",
      "--output-dir",
      dir,
      "--output",
      base,
      executed,
    ]))
  ) {
    return [...problems, "nbconvert --to html failed"];
  }
  return [...problems, ...(await renderProblems(html, plots))];
}

/**
 * Executes one notebook and checks it. nbconvert itself crashing (not a cell error: cells run
 * with --allow-errors) is retried once, because Deno 2.9's kernel occasionally sends an iopub
 * message that fails jupyter_client's signature check under load ("Invalid Signature").
 */
async function runNotebook(path: string, outDir: string, nbconvert: string[]): Promise<boolean> {
  const name = path.split("/").pop()!.replace(/\.ipynb$/, "");
  const started = performance.now();
  let ran = await execute(path, outDir, name, nbconvert);
  if (!ran) {
    console.log(`  retrying ${path} once`);
    ran = await execute(path, outDir, name, nbconvert);
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  const problems = ran
    ? await executedProblems(`${outDir}/${name}.ipynb`, nbconvert)
    : ["nbconvert failed twice"];
  if (problems.length === 0) {
    console.log(`notebook ${path} ... ok (${secs} s, executed copy in ${outDir}/${name}.ipynb)`);
    return true;
  }
  console.log(`notebook ${path} ... FAILED (${secs} s)`);
  for (const p of problems) console.log(`  ${p}`);
  return false;
}

if (import.meta.main) {
  const args = [...Deno.args];
  let outDir = "runs/notebooks";
  const k = args.indexOf("--out-dir");
  if (k >= 0) {
    outDir = args[k + 1];
    args.splice(k, 2);
  }
  const paths = args.length > 0 ? args : [...Deno.readDirSync("notebooks")]
    .filter((e) => e.isFile && e.name.endsWith(".ipynb"))
    .map((e) => `notebooks/${e.name}`)
    .sort();
  await Deno.mkdir(outDir, { recursive: true });
  const nbconvert = await nbconvertCommand();
  let failed = 0;
  for (const p of paths) if (!(await runNotebook(p, outDir, nbconvert))) failed++;
  console.log(`notebooks: ${paths.length - failed} passed, ${failed} failed`);
  Deno.exit(failed > 0 ? 1 : 0);
}
