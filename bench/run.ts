/**
 * UNet speed benchmark: img/s and GFLOP/s of the forward pass (batch 64) and of a training
 * step (batch 32: forward, MSE, backward, Adam) per backend, next to PyTorch CPU running the
 * same architecture (bench/torch_unet.py via Debian's /usr/bin/python3) in the same run.
 *
 * Usage: deno task bench [--repeats N] [--configs tiny,mnist,cifar10] [--no-torch] [--no-stock]
 *        [--no-wasm] [--no-webgpu] [--no-distill] [--no-sampling] [--sample-n N]
 *        [--threads 1,2]   (GEMM threads of the fast cpu path; one row each)
 * `cifar10` is the reference's CIFAR-10 UNet of configs/cifar10_teacher.json (35.7M parameters),
 * timed at smaller batches and at most 2 repeats (labelled), fast cpu and torch only.
 * Then two more tables: one distillation step (PD, RCFD, RDD; bench/distill_step.ts vs
 * bench/torch_distill.py, shipped MNIST teacher and classifier, batch 32, queue 20000, contrast
 * 4096) and sampling (bench/sampling.ts: the teacher's 128-step DDIM vs 128 forward passes,
 * and a 1-step student's speed-up next to the NFE ratio).
 * Each case runs in its own process (bench/measure.ts) under a time cap, with the glibc malloc
 * settings the fast CPU path applies to itself (`MALLOC_ENV`, lib/tfjs/malloc.ts), for the
 * PyTorch processes too. The stock tfjs cpu backend is ~1000x slower, so it is timed on a
 * small batch only (labelled); the wasm backend and the webgpu software adapter likewise.
 * Prints a markdown table; medians with min-max spread; "x torch (best)" is relative to the
 * faster of torch at 1 and 2 threads, "x torch (same thr)" to torch at the row's thread count.
 */
import { type UNetConfig, unetFlops, unetParamCount } from "../lib/models/unet.ts";
import { BENCH_UNETS, benchUNet } from "./configs.ts";
import { type CommandSpec, type FlagValues, runCommand, UsageError } from "../lib/cli/args.ts";
import { MALLOC_ENV } from "../lib/tfjs/malloc.ts";

const FORWARD_BATCH = 64;
const TRAIN_BATCH = 32;
const TORCH_PYTHON = "/usr/bin/python3";
const here = new URL(".", import.meta.url);
/** Permissions of the measuring Deno processes. */
const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
  "--allow-run=cc",
];

/** One timed case. */
interface Case {
  backend: string;
  mode: "train" | "forward";
  batch: number;
  seconds: number[];
  note?: string;
}

/** The flags of `deno task bench`. */
const BENCH_COMMAND = {
  usage: "deno task bench [--repeats N] [--configs LIST] [--threads LIST] [--no-torch] ...",
  summary: "Times the UNet forward pass and training step per backend next to PyTorch CPU, " +
    "then one distillation step (PD, RCFD, RDD) and the sampling overhead; prints markdown tables.",
  flags: {
    repeats: { type: "int", min: 1, default: 3, description: "timed calls per case" },
    configs: {
      type: "string",
      default: "tiny,mnist,cifar10",
      placeholder: "LIST",
      description: `comma-separated UNets: ${BENCH_UNETS.join(", ")}`,
    },
    threads: {
      type: "string",
      placeholder: "LIST",
      description: "comma-separated GEMM thread counts of the fast cpu path, one row each " +
        "(default RDD_BLAS_THREADS or 1)",
    },
    "no-torch": { type: "boolean", description: "leave out the PyTorch rows" },
    "no-stock": { type: "boolean", description: "leave out the stock tfjs cpu rows" },
    "no-wasm": { type: "boolean", description: "leave out the wasm rows" },
    "no-webgpu": { type: "boolean", description: "leave out the webgpu rows" },
    "no-distill": { type: "boolean", description: "leave out the distillation-step table" },
    "no-sampling": { type: "boolean", description: "leave out the sampling table" },
    "sample-n": { type: "int", min: 1, default: 32, description: "images of the sampling table" },
  },
} as const satisfies CommandSpec;

type BenchFlags = FlagValues<typeof BENCH_COMMAND.flags>;

/** A comma-separated list of positive integers of flag `name`. */
function intList(name: string, text: string): number[] {
  const xs = text.split(",").map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new UsageError(`--${name}: expected comma-separated integers >= 1, got "${text}"`);
  }
  return xs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `cmd args` with a time cap; resolves to its stdout, or undefined on failure/timeout. */
async function runCapped(
  cmd: string,
  args: string[],
  capSeconds: number,
  env: Record<string, string> = {},
): Promise<string | undefined> {
  const child = new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
  }, capSeconds * 1000);
  const out = await child.output();
  clearTimeout(timer);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    console.error(`  ${cmd} ${args.slice(0, 4).join(" ")}: failed (${out.code}) ${err}`);
    return undefined;
  }
  return new TextDecoder().decode(out.stdout);
}

function lastJsonLine(text: string | undefined): Record<string, unknown> | undefined {
  const line = text?.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  return line ? JSON.parse(line) : undefined;
}

async function measure(
  backend: string,
  mode: "train" | "forward",
  batch: number,
  repeats: number,
  cfg: UNetConfig,
  capSeconds: number,
  env: Record<string, string>,
): Promise<Case | undefined> {
  const script = new URL("measure.ts", here).pathname;
  const args = [
    "run",
    ...PERMS,
    script,
    backend,
    mode,
    String(batch),
    String(repeats),
    JSON.stringify(cfg),
  ];
  const r = lastJsonLine(await runCapped(Deno.execPath(), args, capSeconds, env));
  return r ? { backend, mode, batch, seconds: r.seconds as number[] } : undefined;
}

async function torchCases(
  cfg: UNetConfig,
  repeats: number,
  threads: number,
  batches: { forward: number; train: number },
): Promise<Case[]> {
  const script = new URL("torch_unet.py", here).pathname;
  try {
    await Deno.stat(TORCH_PYTHON);
  } catch {
    return [];
  }
  const r = lastJsonLine(
    await runCapped(
      TORCH_PYTHON,
      [
        script,
        "--config-json",
        JSON.stringify(cfg),
        "--threads",
        String(threads),
        "--repeats",
        String(repeats),
        "--fwd-batch",
        String(batches.forward),
        "--train-batch",
        String(batches.train),
      ],
      900,
      MALLOC_ENV,
    ),
  );
  if (!r) return [];
  const params = r.params as number;
  const note = params === unetParamCount(cfg) ? undefined : `param mismatch: torch ${params}`;
  const backend = `torch ${r.torch} (${threads} thr)`;
  return [
    { backend, mode: "forward", batch: batches.forward, seconds: r.fwd_s as number[], note },
    { backend, mode: "train", batch: batches.train, seconds: r.train_s as number[], note },
  ];
}

function row(c: Case, cfgName: string, flops: number, torch: Case[]): string {
  const med = median(c.seconds);
  const imgs = c.batch / med;
  const gflops = (imgs * flops * (c.mode === "train" ? 3 : 1)) / 1e9;
  // ratios against the fastest torch run of this mode and against torch at the same threads
  const ref = torch.filter((t) => t.mode === c.mode)
    .sort((a, b) => a.batch / median(a.seconds) - b.batch / median(b.seconds)).pop();
  const same = torch.find((t) =>
    t.mode === c.mode && threadsOf(t.backend) === threadsOf(c.backend)
  );
  const versus = (r?: Case) =>
    r && !c.backend.startsWith("torch")
      ? (imgs / (r.batch / median(r.seconds))).toPrecision(3)
      : "";
  const lo = c.batch / Math.max(...c.seconds), hi = c.batch / Math.min(...c.seconds);
  const spread = `${lo.toPrecision(3)}-${hi.toPrecision(3)}`;
  return `| ${cfgName} | ${c.backend} | ${c.mode} | ${c.batch} | ${
    imgs.toPrecision(3)
  } | ${spread} | ${gflops.toPrecision(3)} | ${versus(ref)} | ${versus(same)} | ${c.note ?? ""} |`;
}

/** The thread count in a backend label such as "torch 1.13 (2 thr)", or undefined. */
function threadsOf(backend: string): number | undefined {
  const m = /\((\d+) thr\)/.exec(backend);
  return m ? Number(m[1]) : undefined;
}

/** A UNet to time: its config, batches, repeats, a row note, and whether slow backends run. */
interface BenchConfig {
  cfg: UNetConfig;
  batches: { forward: number; train: number };
  reps: number;
  note?: string;
  presetOnly: boolean;
}

/**
 * A preset of UNET_PRESETS at the standard batches, or `cifar10`: the UNet of
 * configs/cifar10_teacher.json at batches 8 / 4 and at most 2 repeats (fast cpu and torch).
 */
async function benchConfig(name: string, repeats: number): Promise<BenchConfig> {
  const cfg = await benchUNet(name, "--configs");
  if (name !== "cifar10") {
    return {
      cfg,
      batches: { forward: FORWARD_BATCH, train: TRAIN_BATCH },
      reps: repeats,
      presetOnly: true,
    };
  }
  const reps = Math.min(repeats, 2);
  return {
    cfg,
    batches: { forward: 8, train: 4 },
    reps,
    note: `CIFAR-10 UNet: batch fwd 8 / train 4, ${reps} repeats`,
    presetOnly: false,
  };
}

/** `| label | backend | 1/s median | 1/s min-max | x ref |` for per-call seconds. */
function rateRow(
  label: string,
  backend: string,
  seconds: number[],
  refs: { best?: number[]; same?: number[] } = {},
): string {
  const rate = 1 / median(seconds);
  const versus = (ref?: number[]) => ref ? (rate * median(ref)).toPrecision(3) : "";
  const spread = `${(1 / Math.max(...seconds)).toPrecision(3)}-${
    (1 / Math.min(...seconds)).toPrecision(3)
  }`;
  return `| ${label} | ${backend} | ${rate.toPrecision(3)} | ${spread} | ${versus(refs.best)} | ${
    versus(refs.same)
  } |`;
}

/** The distillation-step table: PD, RCFD, RDD, ours per thread count next to torch at 1, 2. */
async function distillRows(
  threadList: number[],
  repeats: number,
  withTorch: boolean,
): Promise<string[]> {
  const lines = [
    "distillation step: shipped MNIST teacher (8 -> 4) and classifier, batch 32, queue 20000, " +
    "contrast 4096",
    "| method | backend | steps/s (median) | steps/s min-max | x torch (best) | x torch (same thr) |",
    "|---|---|---|---|---|---|",
  ];
  const script = new URL("distill_step.ts", here).pathname;
  const torchScript = new URL("torch_distill.py", here).pathname;
  const hasTorch = withTorch &&
    await Deno.stat(TORCH_PYTHON).then(() => true, () => false);
  for (const method of ["pd", "rcfd", "rdd"]) {
    const ours: [string, number[]][] = [];
    for (const threads of threadList) {
      const r = lastJsonLine(
        await runCapped(
          Deno.execPath(),
          ["run", ...PERMS, script, method, "32", `${repeats}`],
          900,
          {
            RDD_BLAS_THREADS: `${threads}`,
            ...MALLOC_ENV,
          },
        ),
      );
      if (r) ours.push([`tfjs fast-cpu (${threads} thr)`, r.seconds as number[]]);
    }
    const torch: [string, number[]][] = [];
    for (const threads of hasTorch ? [1, 2] : []) {
      const args = [torchScript, "--method", method, "--threads", `${threads}`];
      const r = lastJsonLine(
        await runCapped(TORCH_PYTHON, [...args, "--repeats", `${repeats}`], 900, MALLOC_ENV),
      );
      if (r) torch.push([`torch ${r.torch} (${threads} thr)`, r.seconds as number[]]);
    }
    // ratio against the faster torch run
    const best = torch.map(([, s]) => s).sort((a, b) => median(b) - median(a)).pop();
    for (const [backend, s] of ours) {
      const same = torch.find(([b]) => threadsOf(b) === threadsOf(backend))?.[1];
      lines.push(rateRow(method, backend, s, { best, same }));
    }
    for (const [backend, s] of torch) lines.push(rateRow(method, backend, s));
  }
  return lines;
}

/** The sampling table of bench/sampling.ts (n images in one batch, fast cpu, 1 thread). */
async function samplingRows(n: number, repeats: number): Promise<string[]> {
  const script = new URL("sampling.ts", here).pathname;
  const r = lastJsonLine(
    await runCapped(Deno.execPath(), ["run", ...PERMS, script, `${n}`, `${repeats}`], 900, {
      RDD_BLAS_THREADS: "1",
      ...MALLOC_ENV,
    }),
  );
  if (!r) return ["sampling: failed (see stderr)"];
  const fwd = median(r.forwardMs as number[]);
  const d128 = median(r.ddim128Ms as number[]), d1 = median(r.ddim1Ms as number[]);
  const speedup = d128 / d1;
  return [
    `sampling: shipped MNIST teacher (T = 128), ${n} images in one batch, fast cpu (1 thr)`,
    "| quantity | value | goal |",
    "|---|---|---|",
    `| forward pass, ms/image | ${fwd.toPrecision(3)} | |`,
    `| teacher 128-step DDIM, ms/image | ${d128.toPrecision(4)} | |`,
    `| DDIM overhead over 128 x forward | ${
      (100 * (d128 / (128 * fwd) - 1)).toFixed(1)
    }% | <= 5% |`,
    `| 1-step student, ms/image | ${d1.toPrecision(3)} | |`,
    `| speed-up 1-step vs 128-step DDIM (NFE ratio 128) | ${speedup.toPrecision(4)}x = ${
      (speedup / 128).toFixed(3)
    } x NFE ratio | >= 0.95 x |`,
  ];
}

/**
 * The CPU model and whether it has AVX-512, from /proc/cpuinfo ("unknown CPU" elsewhere). Read
 * through `cat`: Deno lets only --allow-all read /proc/cpuinfo itself.
 */
async function cpuDescription(): Promise<string> {
  const info = await new Deno.Command("cat", { args: ["/proc/cpuinfo"], stderr: "null" }).output()
    .then((o) => new TextDecoder().decode(o.stdout), () => "");
  const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1].trim() ?? "unknown CPU";
  const flags = /^flags\s*:\s*(.+)$/m.exec(info)?.[1].split(/\s+/) ?? [];
  return `${model} (${flags.includes("avx512f") ? "with" : "without"} AVX-512)`;
}

async function main(a: BenchFlags): Promise<void> {
  const repeats = a.repeats;
  const threadList = intList("threads", a.threads ?? Deno.env.get("RDD_BLAS_THREADS") ?? "1");
  const configs: [string, BenchConfig][] = [];
  for (const name of a.configs.split(",")) configs.push([name, await benchConfig(name, repeats)]);
  const lines = [
    `machine: ${await cpuDescription()}, ${Deno.build.target}, ${navigator.hardwareConcurrency} ` +
    `cores, load ${Deno.loadavg()[0].toFixed(2)}`,
    "| config | backend | mode | batch | img/s (median) | img/s min-max | GFLOP/s | x torch (best) " +
    "| x torch (same thr) | note |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [name, { cfg, batches, reps, note, presetOnly }] of configs) {
    const flops = unetFlops(cfg);
    console.error(
      `${name}: ${unetParamCount(cfg)} params, ${(flops / 1e9).toFixed(3)} GFLOP/img forward`,
    );
    const env = { RDD_BLAS_THREADS: `${threadList[0]}`, ...MALLOC_ENV };
    const cases: Case[] = [];
    // ours and torch back to back, so that both see the same machine load
    for (const threads of threadList) {
      for (const mode of ["forward", "train"] as const) {
        const c = await measure("fast-cpu", mode, batches[mode], reps, cfg, 900, {
          ...env,
          RDD_BLAS_THREADS: `${threads}`,
        });
        if (c) cases.push({ ...c, backend: `tfjs fast-cpu (${threads} thr)`, note });
      }
    }
    // torch at 1 and 2 threads: on a busy machine 2 threads can be 10x slower than 1
    const torch = a["no-torch"]
      ? []
      : [...await torchCases(cfg, reps, 1, batches), ...await torchCases(cfg, reps, 2, batches)];
    if (!a["no-stock"] && presetOnly) {
      for (const mode of ["forward", "train"] as const) {
        const c = await measure("stock-cpu", mode, 2, 1, cfg, 300, env);
        if (c) cases.push({ ...c, backend: "tfjs stock cpu", note: "batch 2, 1 call" });
      }
    }
    if (!a["no-wasm"] && presetOnly) {
      for (const mode of ["forward", "train"] as const) {
        const c = await measure("wasm", mode, 8, 1, cfg, 300, env);
        if (c) cases.push({ ...c, backend: "tfjs wasm (1 thr)", note: "batch 8, 1 call" });
      }
    }
    if (!a["no-webgpu"] && presetOnly && (await navigator.gpu?.requestAdapter())) {
      for (const mode of ["forward", "train"] as const) {
        const c = await measure("webgpu", mode, 4, 1, cfg, 120, env);
        if (c) {
          cases.push({
            ...c,
            backend: "tfjs webgpu (adapter)",
            note: "batch 4, 1 call, capped 120 s",
          });
        }
      }
    }
    for (const c of [...cases, ...torch]) lines.push(row(c, name, flops, torch));
  }
  if (!a["no-distill"]) {
    lines.push("", ...await distillRows(threadList, repeats, !a["no-torch"]));
  }
  if (!a["no-sampling"]) lines.push("", ...await samplingRows(a["sample-n"], repeats));
  console.log(lines.join("\n"));
}

if (import.meta.main) await runCommand(BENCH_COMMAND, main);
