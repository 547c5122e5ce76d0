/**
 * UNet speed benchmark: img/s and GFLOP/s of the forward pass (batch 64) and of a training
 * step (batch 32: forward, MSE, backward, Adam) per backend, next to PyTorch CPU running the
 * same architecture (bench/torch_unet.py via Debian's /usr/bin/python3) in the same run.
 *
 * Usage: deno task bench [--repeats N] [--configs tiny,mnist] [--no-torch] [--no-stock]
 *        [--no-wasm] [--no-webgpu] [--threads 1,2]   (GEMM threads of the fast cpu path; one row
 *        each)
 * Each case runs in its own process (bench/measure.ts) under a time cap. The stock tfjs cpu
 * backend is ~1000x slower, so it is timed on a small batch only (labelled); the wasm backend
 * and the webgpu software adapter likewise. Prints a markdown table; medians with min-max spread; "x torch"
 * is relative to the faster of torch at 1 and 2 threads.
 */
import { UNET_PRESETS, type UNetConfig, unetFlops, unetParamCount } from "../lib/models/unet.ts";

const FORWARD_BATCH = 64;
const TRAIN_BATCH = 32;
const TORCH_PYTHON = "/usr/bin/python3";
const here = new URL(".", import.meta.url);
/**
 * glibc malloc settings for every measured process (ours and torch): keep freed memory in the
 * heap instead of returning it to the OS, so large tensors do not page-fault on every use
 * (measured: a fresh 1M-float elementwise op 16-20 ms -> 9-10 ms).
 */
const MALLOC_ENV = { MALLOC_MMAP_MAX_: "0", MALLOC_TRIM_THRESHOLD_: "100000000000" };

/** One timed case. */
interface Case {
  backend: string;
  mode: "train" | "forward";
  batch: number;
  seconds: number[];
  note?: string;
}

function flag(name: string): boolean {
  return Deno.args.includes(name);
}

function option(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
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
  const perms = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys"];
  const script = new URL("measure.ts", here).pathname;
  const args = [
    "run",
    ...perms,
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

async function torchCases(cfg: UNetConfig, repeats: number, threads: number): Promise<Case[]> {
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
    { backend, mode: "forward", batch: FORWARD_BATCH, seconds: r.fwd_s as number[], note },
    { backend, mode: "train", batch: TRAIN_BATCH, seconds: r.train_s as number[], note },
  ];
}

function row(c: Case, cfgName: string, flops: number, torch: Case[]): string {
  const med = median(c.seconds);
  const imgs = c.batch / med;
  const gflops = (imgs * flops * (c.mode === "train" ? 3 : 1)) / 1e9;
  // ratio against the fastest torch run of this mode
  const ref = torch.filter((t) => t.mode === c.mode)
    .sort((a, b) => a.batch / median(a.seconds) - b.batch / median(b.seconds)).pop();
  const ratio = ref && !c.backend.startsWith("torch")
    ? (imgs / (ref.batch / median(ref.seconds))).toPrecision(3)
    : "";
  const lo = c.batch / Math.max(...c.seconds), hi = c.batch / Math.min(...c.seconds);
  const spread = `${lo.toPrecision(3)}-${hi.toPrecision(3)}`;
  return `| ${cfgName} | ${c.backend} | ${c.mode} | ${c.batch} | ${
    imgs.toPrecision(3)
  } | ${spread} | ${gflops.toPrecision(3)} | ${ratio} | ${c.note ?? ""} |`;
}

async function main(): Promise<void> {
  const repeats = Number(option("--repeats", "3"));
  const threadList = option("--threads", Deno.env.get("RDD_BLAS_THREADS") ?? "1").split(",");
  const names = option("--configs", "tiny,mnist").split(",") as (keyof typeof UNET_PRESETS)[];
  if (!Number.isInteger(repeats) || repeats < 1) {
    throw new RangeError(`--repeats: expected an integer >= 1, got ${repeats}`);
  }
  const lines = [
    `machine: ${Deno.build.target}, ${navigator.hardwareConcurrency} cores, load ${
      Deno.loadavg()[0].toFixed(2)
    }`,
    "| config | backend | mode | batch | img/s (median) | img/s min-max | GFLOP/s | x torch | note |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const name of names) {
    const preset = UNET_PRESETS[name];
    if (!preset) throw new RangeError(`--configs: unknown config ${name}`);
    const cfg = JSON.parse(JSON.stringify(preset)) as UNetConfig;
    const flops = unetFlops(cfg);
    console.error(
      `${name}: ${unetParamCount(cfg)} params, ${(flops / 1e9).toFixed(3)} GFLOP/img forward`,
    );
    const env = { RDD_BLAS_THREADS: threadList[0], ...MALLOC_ENV };
    const cases: Case[] = [];
    // ours and torch back to back, so that both see the same machine load
    for (const threads of threadList) {
      for (const mode of ["forward", "train"] as const) {
        const batch = mode === "train" ? TRAIN_BATCH : FORWARD_BATCH;
        const c = await measure("fast-cpu", mode, batch, repeats, cfg, 900, {
          ...env,
          RDD_BLAS_THREADS: threads,
        });
        if (c) cases.push({ ...c, backend: `tfjs fast-cpu (${threads} thr)` });
      }
    }
    // torch at 1 and 2 threads: on a busy machine 2 threads can be 10x slower than 1
    const torch = flag("--no-torch")
      ? []
      : [...await torchCases(cfg, repeats, 1), ...await torchCases(cfg, repeats, 2)];
    if (!flag("--no-stock")) {
      for (const mode of ["forward", "train"] as const) {
        const c = await measure("stock-cpu", mode, 2, 1, cfg, 300, env);
        if (c) cases.push({ ...c, backend: "tfjs stock cpu", note: "batch 2, 1 call" });
      }
    }
    if (!flag("--no-wasm")) {
      for (const mode of ["forward", "train"] as const) {
        const c = await measure("wasm", mode, 8, 1, cfg, 300, env);
        if (c) cases.push({ ...c, backend: "tfjs wasm (1 thr)", note: "batch 8, 1 call" });
      }
    }
    if (!flag("--no-webgpu") && (await navigator.gpu?.requestAdapter())) {
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
  console.log(lines.join("\n"));
}

await main();
