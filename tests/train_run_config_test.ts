import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  buildModel,
  type RunConfig,
  teacherModelConfig,
  validateRunConfig,
} from "../lib/train/run_config.ts";

await tf.setBackend("cpu");

const classifier = JSON.parse(await Deno.readTextFile("data/classifier/config.json")) as RunConfig;

Deno.test("validateRunConfig names the bad field", () => {
  assertThrows(() => validateRunConfig({ ...classifier, batchSize: 0 }), RangeError, "batchSize");
  assertThrows(
    () => validateRunConfig({ ...classifier, data: { name: "cifar" as "mnist" } }),
    RangeError,
    "data.name",
  );
  const teacher = JSON.parse(Deno.readTextFileSync("configs/mnist_teacher.json"));
  assertThrows(
    () => validateRunConfig({ ...teacher, schedule: { name: "cosine", T: 1.5 } }),
    RangeError,
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
    RangeError,
    "initFrom",
  );
});
