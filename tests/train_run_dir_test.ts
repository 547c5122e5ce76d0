import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  configChanges,
  openRunDir,
  readRunHistory,
  RunDirError,
  unsafeChanges,
} from "../lib/train/run_dir.ts";
import { saveCheckpoint } from "../lib/train/checkpoint.ts";
import { parseDistillArgs, runDistill } from "../lib/cli/distill.ts";
import { trainFromConfig } from "../lib/cli/train.ts";
import { readRunConfig } from "../lib/train/run_config.ts";
import { distillFlagsWithBadSteps } from "./cli_helpers.ts";

await tf.setBackend("cpu");

const config = {
  kind: "teacher",
  seed: 1,
  model: { ch: 16, chMult: [1, 2] },
  optimizer: { kind: "adam", lr: 1e-3 },
  steps: 100,
  logEvery: 10,
};

/** A run directory holding `config` and a checkpoint of step 40. */
async function existingRun(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await openRunDir(dir, config);
  const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
  await saveCheckpoint(dir, { model: m }, { step: 40, arrays: {}, state: { config } });
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, `{"step":40,"loss":1}\n`);
  m.dispose();
  return dir;
}

async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else out.push(`${p.slice(dir.length)} ${await Deno.readTextFile(p).catch(() => "")}`);
    }
  };
  await walk(dir);
  return out.sort();
}

Deno.test("configChanges: leaf paths, absent fields, arrays as values; unsafeChanges filters", () => {
  const now = { ...config, optimizer: { kind: "adam", lr: 1e-4 }, model: { ch: 16, chMult: [1] } };
  const ch = configChanges(config, { ...now, extra: true });
  assertEquals(ch.map((c) => c.field), ["extra", "model.chMult", "optimizer.lr"]);
  assertEquals(ch[2], { field: "optimizer.lr", old: 1e-3, new: 1e-4 });
  assertEquals(unsafeChanges(ch).map((c) => c.field), ["extra", "model.chMult"]);
});

Deno.test("openRunDir: an existing run is refused without --resume / --force; nothing changes", async () => {
  const dir = await existingRun();
  const before = await snapshot(dir);
  const e = await assertRejects(() => openRunDir(dir, config), RunDirError, dir);
  for (const s of ["--resume", "--force", "--run"]) assert(e.message.includes(s), e.message);
  assert(!e.message.includes("\n"), "one line");
  await assertRejects(() => openRunDir(dir, config, { resume: true, force: true }), RunDirError);
  assertEquals(await snapshot(dir), before);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openRunDir: a refused resume names the field and writes nothing", async () => {
  const dir = await existingRun();
  const before = await snapshot(dir);
  const other = {
    ...config,
    model: { ch: 32, chMult: [1, 2] },
    optimizer: { kind: "adam", lr: 1 },
  };
  const e = await assertRejects(
    () => openRunDir(dir, other, { resume: true }),
    RunDirError,
    "model.ch (saved 16, now 32) differs",
  );
  assert(!e.message.includes("optimizer.lr ("), "safe fields are not reported as refused");
  assertEquals(await snapshot(dir), before);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openRunDir: a resume with safe changes records them in the history", async () => {
  const dir = await existingRun();
  const now = { ...config, optimizer: { kind: "adam", lr: 1e-4 }, steps: 200 };
  const r = await openRunDir(dir, now, { resume: true });
  assertEquals(r.mode, "resumed");
  const h = await readRunHistory(dir);
  assertEquals(h.map(({ step, field, old, new: v }) => [step, field, old, v]), [
    [40, "optimizer.lr", 1e-3, 1e-4],
    [40, "steps", 100, 200],
  ]);
  assert(!Number.isNaN(Date.parse(h[0].time)));
  assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)), now);
  // The same config again: nothing new in the history.
  assertEquals((await openRunDir(dir, now, { resume: true })).changes, []);
  assertEquals((await readRunHistory(dir)).length, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openRunDir: --force starts over; a non-run directory is never deleted", async () => {
  const dir = await existingRun();
  const now = { ...config, seed: 2 };
  assertEquals((await openRunDir(dir, now, { force: true })).mode, "restarted");
  assertEquals(await snapshot(dir), [`/config.json ${JSON.stringify(now, null, 2)}`]);
  const plain = await Deno.makeTempDir();
  await Deno.writeTextFile(`${plain}/notes.txt`, "mine");
  await assertRejects(() => openRunDir(plain, config, { force: true }), RunDirError, "no config");
  assertEquals(await Deno.readTextFile(`${plain}/notes.txt`), "mine");
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(plain, { recursive: true });
});

Deno.test("openRunDir: temporaries of killed writes are removed at the next start", async () => {
  const dir = await existingRun();
  await Deno.mkdir(`${dir}/checkpoints/.tmp-step_00000050-0badf00d`);
  await Deno.writeTextFile(`${dir}/checkpoints/.tmp-step_00000050-0badf00d/state.json`, "{");
  await Deno.writeTextFile(`${dir}/metrics.jsonl.0badf00d.tmp`, "half");
  await Deno.writeTextFile(`${dir}/checkpoints/latest.12345678.tmp`, "step_");
  await Deno.mkdir(`${dir}/.tmp-old-run-0badf00d`);
  await openRunDir(dir, config, { resume: true });
  const names = (await snapshot(dir)).map((s) => s.split(" ")[0]);
  assert(names.every((n) => !n.includes(".tmp")), `left: ${names}`);
  assert(names.includes("/checkpoints/latest"));
  assertEquals(
    (await Array.fromAsync(Deno.readDir(dir))).some((e) => e.name.includes("tmp")),
    false,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runDistill: a run that fails validation leaves no run directory", async () => {
  const parent = await Deno.makeTempDir();
  const run = `${parent}/distill`;
  const args = await parseDistillArgs(distillFlagsWithBadSteps(run));
  await assertRejects(() => runDistill(args), Error, "6");
  assertEquals(await Array.fromAsync(Deno.readDir(parent)), []);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("trainFromConfig (deno task train): an existing run is refused before anything is written", async () => {
  const cfg = await readRunConfig("configs/mnist_classifier.json");
  const dir = await existingRun();
  const before = await snapshot(dir);
  await assertRejects(() => trainFromConfig(cfg, { runDir: dir }), RunDirError, "--force");
  await assertRejects(
    () => trainFromConfig(cfg, { runDir: dir, resume: true }),
    RunDirError,
    'kind (saved "teacher", now "classifier")',
  );
  assertEquals(await snapshot(dir), before);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openRunDir: a refused call leaves even the temporaries in place", async () => {
  const dir = await existingRun();
  await Deno.writeTextFile(`${dir}/metrics.jsonl.0badf00d.tmp`, "half");
  const before = await snapshot(dir);
  await assertRejects(() => openRunDir(dir, config), RunDirError);
  await assertRejects(() => openRunDir(dir, { ...config, seed: 9 }, { resume: true }), RunDirError);
  assertEquals(await snapshot(dir), before);
  await Deno.remove(dir, { recursive: true });
});
