// End-to-end runs of the smoke sweep (sweeps/smoke.json: 2 variants x 2 seeds, seconds per
// cell): uninterrupted with the local executor, SIGKILLed mid-way and rerun, on the local
// single-node Slurm (.ci/slurm_local.sh), and a failing cell that is recorded and retried.
import { assert, assertAlmostEquals, assertEquals, assertMatch } from "@std/assert";
import { type CellResult, readCellError, readCellResult } from "../lib/sweep/cell.ts";
import { loadSweep, runSweep } from "../lib/sweep/sweep.ts";
import { readSweepSpec } from "../lib/sweep/spec.ts";

const SPEC = "sweeps/smoke.json";
const CLI = ["run", "-A", "lib/cli/sweep.ts"];
const tmp = await Deno.makeTempDir({ prefix: "sweep_run_" });
const quiet = { onProgress: () => {} };

async function results(dir: string): Promise<CellResult[]> {
  const lines = (await Deno.readTextFile(`${dir}/results.jsonl`)).trim().split("\n");
  return lines.map((l) => JSON.parse(l) as CellResult).sort((a, b) => a.id.localeCompare(b.id));
}

/** cFID and final loss are deterministic; wall times and ms/image are not. */
function assertSameNumbers(a: CellResult[], b: CellResult[], tol = 0) {
  assertEquals(a.map((r) => r.id), b.map((r) => r.id));
  a.forEach((r, i) => {
    for (const m of ["cfid", "finalLoss", "nfe"]) {
      if (tol === 0) {
        assertEquals(r.metrics[m], b[i].metrics[m], `${r.variant} seed ${r.seed} ${m}`);
      } else assertAlmostEquals(r.metrics[m], b[i].metrics[m], tol * Math.abs(b[i].metrics[m]));
    }
  });
}

/** Pids of processes whose command line contains `text` (via pgrep: no /proc permission). */
function processesMentioning(text: string): number[] {
  const out = new Deno.Command("pgrep", { args: ["-f", "--", text], stdout: "piped" }).outputSync();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim() !== "")
    .map(Number).filter((pid) => pid !== Deno.pid);
}

const reference = `${tmp}/uninterrupted`;
const expected = (await readSweepSpec(SPEC)).cells;

Deno.test("smoke sweep, local executor: every cell done, outputs written", async () => {
  const r = await runSweep(JSON.parse(await Deno.readTextFile(SPEC)), {
    out: reference,
    parallel: 2,
    ...quiet,
  });
  assertEquals(r.failed, []);
  const rs = await results(reference);
  assertEquals(rs.map((x) => x.id), expected.map((c) => c.id).sort());
  for (const x of rs) {
    assert(x.metrics.cfid > 0 && Number.isFinite(x.metrics.finalLoss), JSON.stringify(x));
    assertEquals(x.metrics.nfe, 1);
  }
  const summary = JSON.parse(await Deno.readTextFile(`${reference}/summary.json`));
  assertEquals(summary.rows.length, 2 * 4);
  assertEquals(summary.rows.every((row: { n: number }) => row.n === 2), true);
  assertEquals((await Deno.readTextFile(`${reference}/summary.csv`)).trim().split("\n").length, 9);
});

Deno.test("smoke sweep SIGKILLed mid-way and rerun: each cell done once, same results", async () => {
  const dir = `${tmp}/killed`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [...CLI, "--spec", SPEC, "--out", dir, "--parallel", "2"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Kill once the first cell has finished while others are running (mid-training or eval).
  const ids = expected.map((c) => c.id);
  for (let i = 0; i < 600; i++) {
    const done = (await Promise.all(ids.map((id) => readCellResult(dir, id)))).filter((x) => x);
    if (done.length >= 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  await child.status;
  await new Promise((r) => setTimeout(r, 1500)); // workers notice their parent is gone
  assertEquals(processesMentioning(dir), [], "workers of the killed sweep must exit");
  const before = new Map<string, string>();
  for (const id of ids) {
    const r = await readCellResult(dir, id);
    if (r) before.set(id, r.finishedAt);
  }
  assert(before.size >= 1 && before.size < ids.length, `killed after ${before.size} cells`);

  const rerun = await new Deno.Command(Deno.execPath(), {
    args: [...CLI, "--", "--spec", SPEC, "--out", dir, "--parallel", "2"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(rerun.code, 0, new TextDecoder().decode(rerun.stderr));
  assertMatch(new TextDecoder().decode(rerun.stdout), /4\/4 done, 0 running, 0 failed/);
  const rs = await results(dir);
  assertEquals(new Set(rs.map((r) => r.id)).size, rs.length);
  // Cells finished before the kill were not run again.
  for (const [id, at] of before) assertEquals(rs.find((r) => r.id === id)!.finishedAt, at);
  assertSameNumbers(rs, await results(reference));
});

const hasSbatch = new Deno.Command("sh", { args: ["-c", "command -v sbatch"], stdout: "null" })
  .outputSync().success;
if (!hasSbatch) {
  console.warn(
    "sweep_run_test: sbatch not found, the Slurm test is skipped (run .ci/slurm_local.sh)",
  );
}

Deno.test({
  name: "smoke sweep, slurm executor on the local single-node Slurm: same results",
  ignore: !hasSbatch,
  fn: async () => {
    const dir = `${tmp}/slurm`;
    const r = await runSweep(JSON.parse(await Deno.readTextFile(SPEC)), {
      out: dir,
      executor: "slurm",
      wait: true,
    });
    assert(r.job !== null);
    const script = await Deno.readTextFile(`${dir}/slurm/sweep.sbatch`);
    assertMatch(script, /#SBATCH --array=0-3%2\n/);
    assertEquals(r.failed, []);
    assertSameNumbers(await results(dir), await results(reference), 1e-4);
  },
});

Deno.test("a failing cell is recorded, the others continue, and a rerun retries it", async () => {
  const dir = `${tmp}/failing`;
  const model = `${tmp}/student_later/model`;
  const spec = {
    name: "failing",
    base: { kind: "distill-round", steps: 2, batchSize: 4, evalSamples: 16 },
    variants: [
      { name: "ok", overrides: {} },
      { name: "missing student", overrides: { student: model } },
    ],
    seeds: [0],
    metrics: ["cfid"],
  };
  const first = await runSweep(spec, { out: dir, parallel: 2, ...quiet });
  const loaded = await loadSweep(dir);
  const bad = loaded.cells.find((c) => c.variant === "missing student")!;
  assertEquals(first.failed, [bad.id]);
  assertMatch((await readCellError(dir, bad.id))!.error, /student_later\/model/);
  assertEquals(loaded.results.map((r) => r.variant), ["ok"]);
  const row = first.summary!.rows.find((r) => r.variant === "missing student")!;
  assertEquals([row.n, row.missing], [0, 1]);

  await Deno.mkdir(model, { recursive: true });
  for (const f of ["model.json", "model.weights.bin"]) {
    await Deno.copyFile(`data/student_2step/model/${f}`, `${model}/${f}`);
  }
  const okAt = loaded.results[0].finishedAt;
  const second = await runSweep(spec, { out: dir, parallel: 2, ...quiet });
  assertEquals(second.failed, []);
  assertEquals(await readCellError(dir, bad.id), null);
  const again = await loadSweep(dir);
  assertEquals(again.results.length, 2);
  assertEquals(again.results.find((r) => r.variant === "ok")!.finishedAt, okAt);
});
