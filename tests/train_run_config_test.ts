import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { buildModel, type RunConfig, teacherModelConfig } from "../lib/train/run_config.ts";
import { ConfigError, parseRunConfig } from "../lib/config/mod.ts";

await tf.setBackend("cpu");

const classifier = JSON.parse(await Deno.readTextFile("data/classifier/config.json")) as RunConfig;

Deno.test("parseRunConfig names the bad field", () => {
  assertThrows(
    () => parseRunConfig({ ...classifier, batchSize: 0 }, "c"),
    ConfigError,
    "batchSize",
  );
  assertThrows(
    () => parseRunConfig({ ...classifier, data: { name: "cifar" } }, "c"),
    ConfigError,
    "data.name",
  );
  const teacher = JSON.parse(Deno.readTextFileSync("configs/mnist_teacher.json"));
  assertThrows(
    () => parseRunConfig({ ...teacher, schedule: { name: "cosine", T: 1.5 } }, "t"),
    ConfigError,
    "schedule.T",
  );
  assertEquals(teacherModelConfig(teacher).dropout, 0);
});

Deno.test("buildModel with initFrom starts from the saved weights; another architecture is refused", async () => {
  const m = await buildModel({ ...classifier, initFrom: "data/classifier/model" });
  const fresh = await buildModel(classifier);
  const saved = JSON.parse(await Deno.readTextFile("data/classifier/model/model.json"));
  assertEquals(m.weights.length, saved.weightsManifest[0].weights.length);
  const a = m.weights[0].read().dataSync(), b = fresh.weights[0].read().dataSync();
  assertEquals(a.length, b.length);
  assertEquals(a.some((x, i) => x !== b[i]), true);
  const wide = { ...classifier, model: { ...(classifier as { model: object }).model, width: 8 } };
  await assertRejects(
    () => buildModel({ ...wide, initFrom: "data/classifier/model" } as RunConfig),
    ConfigError,
    "initFrom data/classifier/model: model of another architecture (",
  );
  await assertRejects(
    () => buildModel({ ...classifier, initFrom: "data/nothing" }),
    ConfigError,
    "initFrom data/nothing: no model.json there",
  );
});
