import * as tf from "@tensorflow/tfjs";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import { UNET_PRESETS, type UNetConfig } from "../lib/models/unet.ts";
import { unetBench } from "./unet_step.ts";
await tf.setBackend("cpu"); enableFastCpu();
const b = unetBench(JSON.parse(JSON.stringify(UNET_PRESETS.mnist)) as UNetConfig, 32);
for (let i = 0; i < 12; i++) await b.step();
