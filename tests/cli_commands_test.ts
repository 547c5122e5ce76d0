/**
 * The commands as a user runs them (`deno task NAME [--] flags`, in a subprocess): --help,
 * one-line user errors with exit code 2 and no stack trace, validation before any work or
 * file, and no alarming noise (WebGPU probe, tfjs banner) on a real run.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  commandOutput,
  distillFlagsWithBadSteps,
  noiseLines,
  REPO,
  runTask,
} from "./cli_helpers.ts";

const tmp = await Deno.makeTempDir({ prefix: "cli-test-" });
const classifier = JSON.parse(await Deno.readTextFile(`${REPO}/configs/mnist_classifier.json`));
const teacher = JSON.parse(await Deno.readTextFile(`${REPO}/configs/mnist_teacher.json`));
/** A classifier run of seconds: width 8, 2 steps of batch 4, 20 held-out digits. */
const tiny = {
  ...classifier,
  $schema: undefined,
  data: { name: "mnist", nTest: 20 },
  model: { ...classifier.model, width: 8 },
  batchSize: 4,
  steps: 2,
  logEvery: 1,
  checkpointEvery: 0,
  evalEvery: 0,
};
async function writeJson(name: string, value: unknown): Promise<string> {
  await Deno.writeTextFile(`${tmp}/${name}`, JSON.stringify(value));
  return `${tmp}/${name}`;
}
const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("--help answers every command, with and without --, listing flags and defaults", async () => {
  const cases: [string[], string[]][] = [
    [["train", "--", "--help"], ["--config FILE", "--resume", "--force", "--steps N"]],
    [["train", "--help"], ["--run DIR", "--check"]],
    [["distill", "--", "--help"], ["--teacher DIR", "--lr X", "default 0.0001", "--force"]],
    [["distill", "-h"], ["--steps-per-round N", "default 1000"]],
    [["demo", "--help"], ["--fast", "default 150, --fast 6"]],
    [["demo", "--", "--help"], ["--eval-samples N"]],
    [["bench", "--", "--help"], ["--threads LIST", "--no-torch", "default 3"]],
    [["bench:memory", "--help"], ["--config NAME", "default 500"]],
  ];
  for (const [args, wanted] of cases) {
    const r = await runTask(args);
    assertEquals(r.code, 0, args.join(" "));
    assertStringIncludes(r.stdout, `usage: deno task ${args[0]}`);
    for (const w of wanted) assertStringIncludes(r.stdout, w, args.join(" "));
    assertEquals(noiseLines(r), []);
  }
});

Deno.test("bad input: one line naming the flag or file and field, exit code 2, no stack", async () => {
  await Deno.writeTextFile(`${tmp}/syntax.json`, '{ "kind": "teacher", }');
  const other = await writeJson("other.json", {
    ...tiny,
    model: { ...tiny.model, width: 4 },
    initFrom: `${REPO}/data/classifier/model`,
  });
  const cases: [string[], string][] = [
    [["train", "--", "--config", `${tmp}/none.json`], `${tmp}/none.json: cannot read config`],
    [["train", "--config", `${tmp}/syntax.json`], `${tmp}/syntax.json: invalid JSON (`],
    [
      ["train", "--", "--config", await writeJson("typo.json", { ...teacher, lerningRate: 1 })],
      `${tmp}/typo.json: lerningRate: unknown field`,
    ],
    [
      ["train", "--config", await writeJson("ema.json", { ...teacher, emaDecay: "0.99" })],
      `${tmp}/ema.json: emaDecay: expected number, received string`,
    ],
    [
      ["train", "--", "--config", "configs/mnist_teacher.json", "--steps", "0"],
      "--steps: expected",
    ],
    [["train", "--", "--confg", "configs/mnist_teacher.json"], "unknown flag --confg"],
    [
      ["train", "--config", other, "--run", `${tmp}/other_run`],
      `initFrom ${REPO}/data/classifier/model: model of another architecture (`,
    ],
    [
      ["distill", "--", "--teacher", "data/teacher", "--method", "pd", "--lr", "abc"],
      '--lr: expected a number > 0, got "abc"',
    ],
    [
      [
        "distill",
        "--teacher",
        "data/teacher",
        "--config",
        await writeJson("d.json", {
          stepsPerRond: 5,
          optimizer: { lrr: 1 },
          rdd: { isp2pWieght: 1 },
        }),
      ],
      `${tmp}/d.json: optimizer.lrr: unknown field; rdd.isp2pWieght: unknown field; ` +
      "stepsPerRond: unknown field",
    ],
    [
      ["distill", "--", "--teacher", "data/classifier", "--method", "pd"],
      "--teacher data/classifier: a classifier run, not a teacher run",
    ],
    [
      ["distill", "--", ...distillFlagsWithBadSteps(`${tmp}/never`)],
      "--from-steps: expected an even number of steps dividing the teacher's T = 128, got 6",
    ],
    [["demo", "--steps", "1.5"], '--steps: expected an integer >= 1, got "1.5"'],
    [
      ["bench", "--", "--threads", "1,x"],
      '--threads: expected comma-separated integers >= 1, got "1,x"',
    ],
    [["bench", "--configs", "tiny,big"], "--configs: unknown config big (expected one of tiny,"],
    [["bench:memory", "--", "--config", "big"], '--config must be "tiny", "mnist" or "cifar10"'],
  ];
  // The architecture check needs tfjs, so that case reports the backend line first.
  const backendLine = (l: string) => l.startsWith("tfjs backend ");
  for (const [args, message] of cases) {
    const r = await runTask(args);
    const lines = commandOutput(r).trim().split("\n").filter((l) => !backendLine(l));
    assertEquals(r.code, 2, `${args.join(" ")}\n${commandOutput(r)}`);
    assertEquals(lines.length, 1, `${args.join(" ")}: ${lines.join(" | ")}`);
    assert(lines[0].startsWith("error: "), lines[0]);
    assertStringIncludes(lines[0], message);
    const printed = r.stdout.split("\n").filter((l) => l !== "" && !backendLine(l));
    assertEquals(printed, [], "nothing was done before the error");
  }
  assertEquals(await exists(`${tmp}/never`), false, "a refused distill leaves no run folder");
  assertEquals(await exists(`${tmp}/other_run`), false, "a refused train leaves no run folder");
});

Deno.test("a real (tiny) training run prints no XDG_RUNTIME_DIR error and no tfjs banner", async () => {
  const config = await writeJson("tiny.json", tiny);
  const r = await runTask(["train", "--", "--config", config, "--run", `${tmp}/tiny_run`]);
  assertEquals(r.code, 0, commandOutput(r));
  assertStringIncludes(r.stdout, "classifier step 2/2");
  assertEquals(noiseLines(r), []);
  assertEquals(commandOutput(r).split("\n").filter((l) => /error/i.test(l)), []);
  assert(await exists(`${tmp}/tiny_run/model/model.json`));
});

Deno.test({
  name: "a real (tiny) distillation: one PD round 8 -> 4 steps, results.json, no noise",
  ignore: Deno.env.get("RDD_SLOW") !== "1",
  fn: async () => {
    const run = `${tmp}/distill_run`;
    const r = await runTask([
      "distill",
      "--teacher",
      "data/teacher",
      "--method",
      "pd",
      "--from-steps",
      "8",
      "--to-steps",
      "4",
      "--steps-per-round",
      "2",
      "--batch",
      "4",
      "--eval-samples",
      "0",
      "--run",
      run,
    ]);
    assertEquals(r.code, 0, commandOutput(r));
    assertStringIncludes(r.stdout, "pd 8->4 step 2/2");
    assertEquals(noiseLines(r), []);
    const results = JSON.parse(await Deno.readTextFile(`${run}/results.json`));
    assertEquals(results.rounds.map((x: { studentSteps: number }) => x.studentSteps), [4]);
    assertEquals(results.config.fromSteps, 8);
  },
});

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
