/**
 * Per-kernel time profile of one UNet training step on the tfjs CPU backend (fast kernels on
 * unless `--stock`). Usage: deno run -A bench/profile.ts [tiny|mnist] [batch] [--stock]
 * [--forward] (profile the inference forward pass instead) [--calls] (slowest shapes too)
 */
import * as tf from "@tensorflow/tfjs";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import { UNET_PRESETS } from "../lib/models/unet.ts";
import { unetBench } from "./unet_step.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const preset = (args[0] ?? "tiny") as keyof typeof UNET_PRESETS;
const batch = Number(args[1] ?? 32);
await tf.setBackend("cpu");
await tf.ready();
if (!Deno.args.includes("--stock")) console.log(enableFastCpu());
const bench = unetBench({
  ...UNET_PRESETS[preset],
  chMult: [...UNET_PRESETS[preset].chMult],
  attnResolutions: [...UNET_PRESETS[preset].attnResolutions],
}, batch);
const run = Deno.args.includes("--forward") ? bench.forward : bench.step;
await run();
const t0 = performance.now();
const info = await tf.profile(async () => {
  await run();
});
const total = performance.now() - t0;
const byName = new Map<string, { ms: number; calls: number }>();
for (const k of info.kernels) {
  const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
  e.ms += k.kernelTimeMs as number;
  e.calls++;
  byName.set(k.name, e);
}
const rows = [...byName].sort((a, b) => b[1].ms - a[1].ms);
const sum = rows.reduce((a, [, e]) => a + e.ms, 0);
console.log(`step wall ${total.toFixed(0)} ms (profiled), kernel sum ${sum.toFixed(0)} ms`);
for (const [name, e] of rows.slice(0, 30)) {
  console.log(
    `${name.padEnd(28)} ${e.ms.toFixed(1).padStart(9)} ms ${String(e.calls).padStart(5)} calls ${
      (100 * e.ms / sum).toFixed(1).padStart(5)
    }%`,
  );
}
if (Deno.args.includes("--calls")) {
  const slow = [...info.kernels].sort((a, b) =>
    (b.kernelTimeMs as number) - (a.kernelTimeMs as number)
  );
  const byShape = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const e = byShape.get(key) ?? { ms: 0, calls: 0 };
    e.ms += k.kernelTimeMs as number;
    e.calls++;
    byShape.set(key, e);
  }
  for (const [key, e] of [...byShape].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) {
    console.log(`${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(4)}x ${key}`);
  }
  for (const k of slow.slice(0, 10)) {
    console.log(
      `${k.name.padEnd(24)} ${(k.kernelTimeMs as number).toFixed(1).padStart(8)} ms  ${
        JSON.stringify(k.inputShapes)
      }`,
    );
  }
}
bench.dispose();
