/**
 * tfjs backend selection: WebGPU (Deno's built-in `navigator.gpu`), CPU (with the BLAS fast
 * kernels of `fast_cpu.ts`) or wasm (XNNPACK, plus the conv filter gradient of
 * `wasm_grads.ts` so it can train).
 *
 * `"auto"` takes WebGPU only on a hardware adapter. A software adapter (Mesa llvmpipe or
 * lavapipe, SwiftShader, WARP) runs the WGSL compute shaders on the CPU through an LLVM JIT:
 * every op pays shader dispatch and buffer copies on top of slower arithmetic than the tuned
 * CPU kernels, so a training step there is much slower than on the CPU backend (measured on a
 * 2-core machine, a small conv net, batch 8, 28x28: about 0.5 s per Adam step on llvmpipe
 * against about 0.05 s with the fast CPU kernels). `"auto"` then picks the CPU backend unless
 * `allowSoftwareGpu` is set, and wasm when the fast CPU kernels cannot load (no native library
 * or no `--allow-ffi`: wasm then trains faster than the stock CPU kernels, e.g. the tiny UNet
 * ~2 img/s against ~0.03). Asking for `"webgpu"` explicitly always uses the adapter it finds.
 *
 * The WebGPU and wasm packages register their backends with a higher priority than the CPU
 * one when imported, so they are imported here only when chosen: importing this module never
 * changes which backend a bare `tf.ready()` picks.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { disableFastCpu, enableFastCpu, type FastCpuStatus } from "./fast_cpu.ts";
import { registerWasmConvGradients } from "./wasm_grads.ts";

/** The backends {@link selectBackend} can set. */
export const BACKEND_NAMES = ["webgpu", "cpu", "wasm"] as const;
/** A tfjs backend name handled here. */
export type BackendName = typeof BACKEND_NAMES[number];
/** Valid values of `prefer` and of env `RDD_BACKEND`. */
export const BACKEND_PREFERENCES = ["auto", ...BACKEND_NAMES] as const;
/** What the caller asks for: a backend, or `"auto"` (hardware WebGPU, else CPU). */
export type BackendPreference = typeof BACKEND_PREFERENCES[number];

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /** Backend to use; when absent env `RDD_BACKEND` decides, else `"auto"`. */
  readonly prefer?: BackendPreference;
  /** Let `"auto"` take a software WebGPU adapter (default false: slower than the CPU). */
  readonly allowSoftwareGpu?: boolean;
  /**
   * Register the BLAS fast kernels (`fast_cpu.ts`) when the CPU backend is chosen (default: true unless env
   * `RDD_FAST_CPU=0`); `false` restores the stock tfjs CPU kernels.
   */
  readonly fastCpu?: boolean;
  /** Print {@link describeBackend} of the result with `console.log` (default false). */
  readonly log?: boolean;
}

/** The WebGPU adapter as Deno reports it (strings are empty where the driver gives none). */
export interface AdapterReport {
  /** Vendor: a name or a PCI/Vulkan vendor id as text (Mesa's software drivers: "65541"). */
  readonly vendor: string;
  /** GPU architecture or family name, e.g. "rdna-3" (often empty). */
  readonly architecture: string;
  /** Device name or PCI device id as text (often empty). */
  readonly device: string;
  /** Driver description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  readonly description: string;
  /** What the adapter itself says (`GPUAdapterInfo.isFallbackAdapter`; false if unreported). */
  readonly isFallbackAdapter: boolean;
  /** Fallback adapter, or a known software rasteriser by name (llvmpipe, lavapipe, ...). */
  readonly isSoftware: boolean;
}

/** The wasm backend's build and threading, when it is chosen. */
export interface WasmReport {
  /** Directory (file:// URL) the .wasm binaries were loaded from. */
  readonly binariesUrl: string;
  /** Whether the loaded build uses WebAssembly SIMD. */
  readonly simd: boolean;
  /** Whether the loaded build runs XNNPACK on several threads. */
  readonly multiThread: boolean;
  /** Threads XNNPACK uses. */
  readonly threads: number;
  /** Kernels added by `registerWasmConvGradients` in this call (empty if already there). */
  readonly addedKernels: readonly string[];
}

/** Where the preference came from. */
export type PreferenceSource = "option" | "env" | "default";

/** Result of {@link selectBackend}. */
export interface BackendReport {
  /** The active tfjs backend after selection (`tf.getBackend()`). */
  readonly name: BackendName;
  /** What was asked for, and by whom. */
  readonly requested: BackendPreference;
  /** Who asked: the `backend` option, the `RDD_BACKEND` variable, or the default. */
  readonly source: PreferenceSource;
  /** Why `name` was chosen, one short sentence. */
  readonly reason: string;
  /** The WebGPU adapter, when one was looked for (`"auto"` or `"webgpu"`) and found. */
  readonly adapter?: AdapterReport;
  /**
   * State of the BLAS fast kernels, when the CPU backend is chosen (or was tried first: `"auto"`
   * falls back to wasm when they cannot load).
   */
  readonly fastCpu?: FastCpuStatus;
  /** wasm details, when the wasm backend is chosen. */
  readonly wasm?: WasmReport;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b/i;

/** True when an adapter name (description, device, ...) names a known software rasteriser. */
export function isSoftwareAdapterName(name: string): boolean {
  return SOFTWARE_ADAPTER.test(name);
}

/**
 * Checks a backend preference; `source` names where it came from for the error message.
 * @throws RangeError naming `source` and the valid values when `value` is not one of them.
 */
export function parseBackendPreference(
  value: string,
  source: "prefer" | "RDD_BACKEND",
): BackendPreference {
  const v = value.trim().toLowerCase();
  if ((BACKEND_PREFERENCES as readonly string[]).includes(v)) return v as BackendPreference;
  throw new RangeError(
    `${source} must be one of ${BACKEND_PREFERENCES.map((p) => `"${p}"`).join(", ")}, ` +
      `got ${JSON.stringify(value)}`,
  );
}

/**
 * Asks Deno's WebGPU for the adapter tfjs would use (high-performance preference) and
 * describes it; `undefined` when WebGPU is unavailable or no adapter exists.
 */
export async function probeAdapter(): Promise<AdapterReport | undefined> {
  let adapter: GPUAdapter | null | undefined;
  ensureRuntimeDir();
  try {
    adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  } catch {
    return undefined;
  }
  if (!adapter) return undefined;
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = adapter as GPUAdapter & { isFallbackAdapter?: boolean };
  const isFallbackAdapter = Boolean(info.isFallbackAdapter ?? legacy.isFallbackAdapter);
  const names = [info.vendor, info.architecture, info.device, info.description].join(" ");
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter,
    isSoftware: isFallbackAdapter || isSoftwareAdapterName(names),
  };
}

/**
 * Gives the native graphics libraries a valid `XDG_RUNTIME_DIR` before WebGPU is probed: when
 * it is unset or not an absolute path, libwayland (loaded by the Vulkan drivers) prints
 * `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice, although nothing
 * failed. Sets it, for this process only, to a fresh private temporary directory (removed at
 * exit). Without env or write permission it leaves things as they are.
 */
function ensureRuntimeDir(): void {
  const name = "XDG_RUNTIME_DIR";
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return;
  if (Deno.env.get(name)?.startsWith("/")) return;
  let dir: string;
  try {
    dir = Deno.makeTempDirSync({ prefix: "rdd-runtime-" });
    Deno.chmodSync(dir, 0o700);
  } catch {
    return;
  }
  Deno.env.set(name, dir);
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
}

/**
 * Keeps tfjs' CPU backend from printing its "install our node backend" banner on its first
 * tensor write: tfjs takes Deno for Node.js (its `IS_NODE` flag), but tfjs-node does not run
 * in Deno, so the advice does not apply. Other tfjs warnings stay on.
 */
function muteNodeBanner(): void {
  const cpu = tf.findBackend("cpu") as { firstUse?: boolean } | null;
  if (cpu && "firstUse" in cpu) cpu.firstUse = false;
}

/** Reads an env variable; `undefined` when unset, empty, or env access is not granted. */
function readEnv(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  const v = Deno.env.get(name);
  return v === undefined || v.trim() === "" ? undefined : v;
}

/** Resolves `fastCpu`: option, else env `RDD_FAST_CPU` ("0" off, "1" on), else on. */
function wantFastCpu(option: boolean | undefined): { on: boolean; why: string } {
  if (option !== undefined) return { on: option, why: `option fastCpu: ${option}` };
  const env = readEnv("RDD_FAST_CPU");
  if (env === undefined) return { on: true, why: "default" };
  if (env.trim() !== "0" && env.trim() !== "1") {
    throw new RangeError(`RDD_FAST_CPU must be "0" or "1", got ${JSON.stringify(env)}`);
  }
  return { on: env.trim() === "1", why: `RDD_FAST_CPU=${env.trim()}` };
}

/** Sets the active tfjs backend, throwing when its initialisation fails. */
async function activate(name: BackendName, hint: string): Promise<void> {
  if (!(await tf.setBackend(name))) {
    throw new Error(`tfjs could not initialise the "${name}" backend (${hint})`);
  }
  await tf.ready();
  muteNodeBanner();
}

async function useCpu(fastCpu: boolean | undefined): Promise<FastCpuStatus> {
  const want = wantFastCpu(fastCpu);
  let status: FastCpuStatus;
  if (want.on) {
    status = enableFastCpu();
  } else {
    disableFastCpu();
    status = { enabled: false, registered: [], reason: `disabled by ${want.why}` };
  }
  await activate("cpu", "stock tfjs CPU backend");
  return status;
}

/** `file://` URL of the directory holding the tfjs wasm binaries (`*.wasm`). */
export function wasmBinariesUrl(): string {
  return new URL("./", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).href;
}

async function useWasm(): Promise<WasmReport> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const binariesUrl = wasmBinariesUrl();
  // The binaries' location is read once, at the backend's first initialisation.
  if (tf.findBackend("wasm") === null) wasm.setWasmPaths(binariesUrl);
  const addedKernels = registerWasmConvGradients();
  await activate("wasm", `binaries expected in ${binariesUrl}`);
  return {
    binariesUrl,
    simd: Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")),
    multiThread: Boolean(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")),
    threads: wasm.getThreadsCount(),
    addedKernels,
  };
}

async function useWebGpu(): Promise<void> {
  await import("@tensorflow/tfjs-backend-webgpu");
  await activate("webgpu", "Deno WebGPU adapter or device request failed");
}

let lastReport: BackendReport | undefined;

/** "1 thread", "2 threads", "? threads" (unknown). */
function count(n: number | undefined, noun: string): string {
  return `${n ?? "?"} ${noun}${n === 1 ? "" : "s"}`;
}

/**
 * Chooses and activates a tfjs backend (see the module doc for the `"auto"` rule) and
 * returns what was chosen and why. Precedence: `options.prefer`, else env `RDD_BACKEND`,
 * else `"auto"`.
 * @throws RangeError for an unknown `prefer` / `RDD_BACKEND` / `RDD_FAST_CPU` value.
 * @throws Error when `"webgpu"` is asked for but no adapter exists, or a backend fails to start.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendReport> {
  let requested: BackendPreference = "auto";
  let source: PreferenceSource = "default";
  if (options.prefer !== undefined) {
    requested = parseBackendPreference(String(options.prefer), "prefer");
    source = "option";
  } else {
    const env = readEnv("RDD_BACKEND");
    if (env !== undefined) {
      requested = parseBackendPreference(env, "RDD_BACKEND");
      source = "env";
    }
  }
  const by = source === "option" ? "prefer" : source === "env" ? "RDD_BACKEND" : "default";
  const adapter = requested === "auto" || requested === "webgpu" ? await probeAdapter() : undefined;

  let report: BackendReport;
  const base = { requested, source, adapter };
  if (requested === "webgpu") {
    if (!adapter) {
      throw new Error(`${by} asks for "webgpu" but Deno's navigator.gpu offers no adapter`);
    }
    await useWebGpu();
    report = { ...base, name: "webgpu", reason: `asked for by ${by}` };
  } else if (requested === "wasm") {
    report = { ...base, name: "wasm", reason: `asked for by ${by}`, wasm: await useWasm() };
  } else if (
    requested === "auto" && adapter && (!adapter.isSoftware || options.allowSoftwareGpu === true)
  ) {
    await useWebGpu();
    report = {
      ...base,
      name: "webgpu",
      reason: adapter.isSoftware
        ? "auto: software adapter allowed by allowSoftwareGpu"
        : "auto: hardware WebGPU adapter",
    };
  } else {
    const fastCpu = await useCpu(options.fastCpu);
    if (requested === "auto" && !fastCpu.enabled && wantFastCpu(options.fastCpu).on) {
      const reason = `auto: fast CPU kernels unavailable (${fastCpu.reason}); wasm trains ` +
        "faster than the stock CPU kernels";
      report = { ...base, name: "wasm", reason, fastCpu, wasm: await useWasm() };
    } else {
      const reason = requested === "cpu"
        ? `asked for by ${by}`
        : !adapter
        ? "auto: no WebGPU adapter"
        : "auto: WebGPU adapter is software (slower than the CPU backend)";
      report = { ...base, name: "cpu", reason, fastCpu };
    }
  }
  lastReport = report;
  if (options.log === true) console.log(describeBackend(report));
  return report;
}

/**
 * One line describing `report` (default: the last {@link selectBackend} result; without one,
 * just the active tfjs backend), e.g.
 * `tfjs backend cpu (auto: WebGPU adapter is software ...) | adapter: llvmpipe ... [software] |
 * fast CPU: on, /usr/lib/.../libdnnl.so.2, 2 threads, native kernels on`.
 */
export function describeBackend(report: BackendReport | undefined = lastReport): string {
  if (!report) return `tfjs backend ${tf.getBackend()} (not chosen by selectBackend)`;
  const parts = [`tfjs backend ${report.name} (${report.reason})`];
  const a = report.adapter;
  if (a) {
    const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(" ");
    parts.push(`adapter: ${name}${a.isSoftware ? " [software]" : ""}`);
  }
  const f = report.fastCpu;
  if (f) {
    parts.push(
      f.enabled
        ? `fast CPU: on, ${f.library ?? "BLAS"}, ${count(f.threads, "thread")}, native kernels ${
          f.native ? "on" : `off (${f.nativeReason})`
        }`
        : `fast CPU: off (${f.reason ?? "unknown reason"})`,
    );
  }
  const w = report.wasm;
  if (w) {
    parts.push(`wasm: simd ${w.simd ? "on" : "off"}, ${count(w.threads, "thread")}`);
  }
  return parts.join(" | ");
}
