import * as tf from "@tensorflow/tfjs";
import { assertGreaterOrEqual } from "@std/assert";
import { loadLayersModelFiles } from "../lib/train/checkpoint.ts";
import { loadRunData, readRunConfig } from "../lib/train/run_config.ts";
import { testAccuracy, trainFromConfig } from "../lib/cli/train.ts";

await tf.setBackend("cpu");

Deno.test("shipped classifier: >= 97% accuracy on the held-out MNIST split", async () => {
  const config = await readRunConfig("data/classifier/config.json");
  const { test } = await loadRunData(config);
  const model = await loadLayersModelFiles("data/classifier/model");
  assertGreaterOrEqual(await testAccuracy(model, test), 0.97);
});

Deno.test({
  name: "classifier trained from scratch with configs/mnist_classifier.json reaches >= 97%",
  ignore: Deno.env.get("RDD_SLOW") !== "1",
  fn: async () => {
    const { selectBackend } = await import("../lib/tfjs/backend.ts");
    await selectBackend({ prefer: "cpu" });
    const runDir = await Deno.makeTempDir();
    const config = await readRunConfig("configs/mnist_classifier.json");
    await trainFromConfig(config, { runDir });
    const model = await loadLayersModelFiles(`${runDir}/model`);
    const { test } = await loadRunData(config);
    assertGreaterOrEqual(await testAccuracy(model, test), 0.97);
    await Deno.remove(runDir, { recursive: true });
  },
});
