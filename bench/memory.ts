/**
 * Memory over a long training run: trains a UNet preset on the fast CPU path for N steps
 * (default 500; toolkit Adam, fixed random batch) and prints, every `--every` steps, the
 * resident set size (RSS), the V8 heap and the tfjs live tensor count and bytes. Flat columns
 * after warm-up mean no leak. Ends with the peak RSS and the RSS / tensor drift between the
 * first report after warm-up and the last.
 *
 * Usage: deno task bench:memory [--config tiny|mnist|cifar10] [--batch 8] [--steps 500]
 *        [--every 50]
 */
import * as tf from "@tensorflow/tfjs";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import { benchUNet } from "./configs.ts";
import { unetBench } from "./unet_step.ts";

function option(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

function positiveInt(name: string, fallback: string): number {
  const v = Number(option(name, fallback));
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name}: expected an integer >= 1`);
  return v;
}

const name = option("--config", "tiny");
const cfg = await benchUNet(name, "--config");
const batch = positiveInt("--batch", "8");
const steps = positiveInt("--steps", "500");
const every = positiveInt("--every", "50");

await tf.setBackend("cpu");
await tf.ready();
const status = enableFastCpu();
const bench = unetBench(cfg, batch);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
console.log(
  `${name} UNet, batch ${batch}, ${steps} steps, fast cpu ${status.enabled ? "on" : "off"}`,
);
console.log("| step | loss | RSS MiB | V8 heap MiB | tensors | tensor MiB |");
console.log("|---|---|---|---|---|---|");
const rows: { rss: number; tensors: number }[] = [];
let peak = 0;
for (let step = 1; step <= steps; step++) {
  const loss = await bench.step();
  const mem = Deno.memoryUsage();
  peak = Math.max(peak, mem.rss);
  if (step % every === 0 || step === 1) {
    const tm = tf.memory();
    rows.push({ rss: mem.rss, tensors: tm.numTensors });
    console.log(
      `| ${step} | ${loss.toFixed(4)} | ${mib(mem.rss)} | ${
        mib(mem.heapUsed)
      } | ${tm.numTensors} | ${mib(tm.numBytes)} |`,
    );
  }
}
const first = rows[Math.min(1, rows.length - 1)], last = rows[rows.length - 1];
console.log(
  `peak RSS ${mib(peak)} MiB; from the first report after warm-up to the last: RSS ${
    mib(last.rss - first.rss)
  } MiB, tensors ${last.tensors - first.tensors}`,
);
bench.dispose();
