import { assertEquals, assertThrows } from "@std/assert";
import {
  ConfigError,
  distillConfigJsonSchema,
  parseDistillConfig,
  parseDistillConfigFile,
  parseRunConfig,
  readJsonFile,
  runConfigJsonSchema,
} from "../lib/config/mod.ts";

const teacher = JSON.parse(Deno.readTextFileSync("configs/mnist_teacher.json"));
const classifier = JSON.parse(Deno.readTextFileSync("configs/mnist_classifier.json"));
const distill = JSON.parse(Deno.readTextFileSync("configs/distill_mnist.json"));

function rejects(f: () => unknown, message: string) {
  const e = assertThrows(f, ConfigError);
  assertEquals(e.message, message);
}

Deno.test("every shipped config and run config.json is valid", async () => {
  for (const f of ["mnist_teacher", "mnist_teacher_stage2", "mnist_classifier"]) {
    const c = parseRunConfig(await readJsonFile(`configs/${f}.json`), f);
    assertEquals("$schema" in c, false);
  }
  for (const d of ["data/teacher", "data/classifier"]) {
    parseRunConfig(await readJsonFile(`${d}/config.json`), d);
  }
  for (const f of ["distill_mnist", "distill_mnist_smoke"]) {
    parseDistillConfig(await readJsonFile(`configs/${f}.json`), f);
  }
});

Deno.test("run config: unknown fields, wrong types and ranges name the field path", () => {
  rejects(
    () => parseRunConfig({ ...teacher, lerningRate: 1 }, "t.json"),
    "t.json: lerningRate: unknown field",
  );
  rejects(
    () => parseRunConfig({ ...teacher, optimizer: { ...teacher.optimizer, lrr: 1 } }, "t.json"),
    "t.json: optimizer.lrr: unknown field",
  );
  rejects(
    () => parseRunConfig({ ...teacher, emaDecay: "0.99" }, "t.json"),
    "t.json: emaDecay: expected number, received string",
  );
  rejects(
    () => parseRunConfig({ ...teacher, emaDecay: 1 }, "t.json"),
    "t.json: emaDecay: Too big: expected number to be <1",
  );
  rejects(
    () => parseRunConfig({ ...classifier, batchSize: "64" }, "c.json"),
    "c.json: batchSize: expected number, received string",
  );
  rejects(
    () => parseRunConfig({ ...classifier, batchSize: 0 }, "c.json"),
    "c.json: batchSize: Too small: expected number to be >=1",
  );
  rejects(
    () => parseRunConfig({ ...teacher, schedule: { name: "cosine", T: 1.5 } }, "t.json"),
    "t.json: schedule.T: expected int, received number",
  );
  rejects(
    () => parseRunConfig({ ...teacher, model: "big" }, "t.json"),
    't.json: model: expected one of "tiny"|"mnist"',
  );
  rejects(
    () => parseRunConfig({ ...teacher, model: { imageSize: 32 } }, "t.json").kind,
    "t.json: model.inChannels: expected number, received undefined; model.ch: expected number, " +
      "received undefined; model.chMult: expected array, received undefined; model.numResBlocks: " +
      "expected number, received undefined; model.attnResolutions: expected array, received " +
      "undefined; model.dropout: expected number, received undefined",
  );
  rejects(
    () => parseRunConfig({ ...teacher, kind: "student" }, "t.json"),
    "t.json: kind: Invalid discriminator value. Expected 'teacher' | 'classifier'",
  );
  rejects(
    () => parseRunConfig({ ...teacher, data: { name: "cifar" } }, "t.json"),
    't.json: data.name: expected "mnist" or "cifar10"',
  );
});

Deno.test("distill config: unknown fields in rdd/optimizer, strings for numbers, cross-field checks", () => {
  rejects(
    () => parseDistillConfig({ ...distill, stepsPerRond: 5 }, "d.json"),
    "d.json: stepsPerRond: unknown field",
  );
  rejects(
    () => parseDistillConfig({ ...distill, rdd: { isp2pWieght: 1 } }, "d.json"),
    "d.json: rdd.isp2pWieght: unknown field",
  );
  rejects(
    () => parseDistillConfig({ ...distill, optimizer: { lrr: 1 } }, "d.json"),
    "d.json: optimizer.lrr: unknown field",
  );
  rejects(
    () => parseDistillConfig({ ...distill, optimizer: { totalSteps: 5 } }, "d.json"),
    "d.json: optimizer.totalSteps: unknown field",
  );
  rejects(
    () => parseDistillConfig({ ...distill, batchSize: "32" }, "d.json"),
    "d.json: batchSize: expected number, received string",
  );
  rejects(
    () => parseDistillConfig({ ...distill, rdd: { queueSize: 100 } }, "d.json"),
    "d.json: rdd.contrastSize: contrastSize must be <= queueSize",
  );
  rejects(
    () => parseDistillConfig({ ...distill, fromSteps: 6, toSteps: 2 }, "d.json"),
    "d.json: fromSteps: fromSteps / toSteps must be a power of 2 >= 2",
  );
  rejects(
    () => parseDistillConfig({ ...distill, evalSamples: 1 }, "d.json"),
    "d.json: evalSamples: expected 0 or an integer >= 2",
  );
});

Deno.test("readJsonFile names the file on a syntax error and on a missing file", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.json`, '{ "kind": "teacher", }');
  const e = await readJsonFile(`${dir}/bad.json`).catch((e: Error) => e) as Error;
  assertEquals(e instanceof ConfigError, true);
  assertEquals(e.message.startsWith(`${dir}/bad.json: invalid JSON (`), true);
  const m = await readJsonFile(`${dir}/none.json`).catch((e: Error) => e) as Error;
  assertEquals(m.message, `${dir}/none.json: cannot read config (no such file)`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("JSON Schemas: strict objects and the shipped files equal the generated ones", async () => {
  const run = runConfigJsonSchema(), dist = distillConfigJsonSchema();
  assertEquals((dist as { additionalProperties: boolean }).additionalProperties, false);
  const shipped = async (f: string) =>
    JSON.parse(await Deno.readTextFile(`configs/schema/${f}.schema.json`));
  assertEquals(await shipped("run"), run);
  assertEquals(await shipped("distill"), dist);
});

Deno.test("a distill --config file may be partial; its fields are still checked", () => {
  assertEquals(parseDistillConfigFile({ stepsPerRound: 5 }, "p.json"), { stepsPerRound: 5 });
  rejects(
    () => parseDistillConfigFile({ fromSteps: 8, toSteps: 3 }, "p.json"),
    "p.json: fromSteps: fromSteps / toSteps must be a power of 2 >= 2",
  );
  rejects(() => parseDistillConfigFile({ lr: 1 }, "p.json"), "p.json: lr: unknown field");
});
