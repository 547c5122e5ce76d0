/**
 * Memory over a long training run: trains a UNet on the fast CPU path for N steps (default
 * 500; toolkit Adam, fixed random batch) and prints, every `--every` steps, the resident set
 * size (RSS), the V8 heap, the tfjs live tensor count and bytes, and the bytes the output pool
 * holds for reuse (lib/tfjs/output_pool.ts) with the arrays it has allocated so far. Flat
 * columns after warm-up mean no leak. Ends with the peak RSS and the RSS / tensor drift between
 * the first report after warm-up and the last.
 *
 * Usage: deno task bench:memory [--config tiny|mnist|cifar10] [--batch 8] [--steps 500]
 *        [--every 50]
 */
import * as tf from "@tensorflow/tfjs";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import { outputPool } from "../lib/tfjs/output_pool.ts";
import { type CommandSpec, type FlagValues, runCommand } from "../lib/cli/args.ts";
import { BENCH_UNETS, benchUNet } from "./configs.ts";
import { unetBench } from "./unet_step.ts";

/** The flags of `deno task bench:memory`. */
const MEMORY_COMMAND = {
  usage: "deno task bench:memory [--config NAME] [--batch N] [--steps N] [--every N]",
  summary: "Trains a UNet for N steps and prints RSS, V8 heap and live tfjs tensors.",
  flags: {
    config: {
      type: "string",
      default: "tiny",
      choices: BENCH_UNETS,
      description: "the UNet to train",
    },
    batch: { type: "int", min: 1, default: 8, description: "images per step" },
    steps: { type: "int", min: 1, default: 500, description: "training steps" },
    every: { type: "int", min: 1, default: 50, description: "steps between reports" },
  },
} as const satisfies CommandSpec;

async function main(
  { config: name, batch, steps, every }: FlagValues<typeof MEMORY_COMMAND.flags>,
): Promise<void> {
  const cfg = await benchUNet(name, "--config");
  await tf.setBackend("cpu");
  await tf.ready();
  const status = enableFastCpu();
  const bench = unetBench(cfg, batch);
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(
    `${name} UNet, batch ${batch}, ${steps} steps, fast cpu ${status.enabled ? "on" : "off"}`,
  );
  console.log(
    "| step | loss | RSS MiB | V8 heap MiB | tensors | tensor MiB | pool MiB | pool allocated |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  const rows: { rss: number; tensors: number }[] = [];
  let peak = 0;
  for (let step = 1; step <= steps; step++) {
    const loss = await bench.step();
    const mem = Deno.memoryUsage();
    peak = Math.max(peak, mem.rss);
    if (step % every === 0 || step === 1) {
      const tm = tf.memory();
      rows.push({ rss: mem.rss, tensors: tm.numTensors });
      const pool = outputPool()?.stats();
      console.log(
        `| ${step} | ${loss.toFixed(4)} | ${mib(mem.rss)} | ${
          mib(mem.heapUsed)
        } | ${tm.numTensors} | ${mib(tm.numBytes)} | ${pool ? mib(pool.heldBytes) : "-"} | ${
          pool?.allocated ?? "-"
        } |`,
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
}

if (import.meta.main) await runCommand(MEMORY_COMMAND, main);
