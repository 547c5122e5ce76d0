import * as tf from "@tensorflow/tfjs";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import { UNET_PRESETS } from "../lib/models/unet.ts";
import { unetBench } from "./unet_step.ts";
await tf.setBackend("cpu"); await tf.ready(); enableFastCpu();
const preset = Deno.args[0] as keyof typeof UNET_PRESETS;
const bench = unetBench({ ...UNET_PRESETS[preset], chMult: [...UNET_PRESETS[preset].chMult], attnResolutions: [...UNET_PRESETS[preset].attnResolutions] }, Number(Deno.args[1]));
const run = Deno.args.includes("--forward") ? bench.forward : bench.step;
await run(); await run();
const ts: number[] = [];
for (let i = 0; i < Number(Deno.args[2] ?? 10); i++) { const t0 = performance.now(); await run(); ts.push(performance.now() - t0); }
ts.sort((a, b) => a - b);
console.log(`${Deno.args.join(" ")}: min ${ts[0].toFixed(0)} med ${ts[Math.floor(ts.length / 2)].toFixed(0)} ms`);
