/**
 * Worker of bench/run.ts: times ONE case (backend x UNet config x mode) in a fresh process and
 * prints one JSON line `{backend, mode, batch, seconds: number[], params, info}`.
 *
 * Usage: deno run <perms> bench/measure.ts <fast-cpu|stock-cpu|webgpu|wasm> <train|forward>
 *          <batch> <repeats> '<UNetConfig JSON>'
 * Each repeat is timed after one untimed warm-up call.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import { selectBackend } from "../lib/tfjs/backend.ts";
import type { UNetConfig } from "../lib/models/unet.ts";
import { unetBench } from "./unet_step.ts";

const [backend, mode, batchArg, repeatsArg, cfgJson] = Deno.args;
const batch = Number(batchArg), repeats = Number(repeatsArg);
if (!["fast-cpu", "stock-cpu", "webgpu", "wasm"].includes(backend)) {
  throw new TypeError(`backend: expected fast-cpu | stock-cpu | webgpu | wasm, got ${backend}`);
}
if (mode !== "train" && mode !== "forward") {
  throw new TypeError(`mode: expected train | forward, got ${mode}`);
}
if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(repeats) || repeats < 1) {
  throw new RangeError(`batch, repeats: expected integers >= 1, got ${batchArg}, ${repeatsArg}`);
}
const cfg = JSON.parse(cfgJson) as UNetConfig;

let info: unknown = backend;
if (backend === "webgpu") {
  if (!(await tf.setBackend("webgpu"))) throw new Error("webgpu backend unavailable");
  const adapter = await navigator.gpu?.requestAdapter();
  info = adapter?.info ?? "webgpu";
} else if (backend === "wasm") {
  info = (await selectBackend({ prefer: "wasm" })).wasm;
} else {
  await tf.setBackend("cpu");
  if (backend === "fast-cpu") {
    const status = enableFastCpu();
    if (!status.enabled) throw new Error(`fast cpu unavailable: ${status.reason}`);
    info = { library: status.library, threads: status.threads };
  }
}
await tf.ready();
const bench = unetBench(cfg, batch);
const run = mode === "train" ? () => bench.step() : () => bench.forward();
await run();
const seconds: number[] = [];
for (let i = 0; i < repeats; i++) {
  const t0 = performance.now();
  await run();
  seconds.push((performance.now() - t0) / 1000);
}
console.log(
  JSON.stringify({ backend, mode, batch, seconds, params: bench.model.countParams(), info }),
);
bench.dispose();
