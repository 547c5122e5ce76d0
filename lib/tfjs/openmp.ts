/**
 * The process's OpenMP runtime (libgomp, or LLVM's / Intel's), which oneDNN and the native
 * kernels (lib/tfjs/native.ts) run their threads on: its thread-count functions, through a
 * handle that keeps it loaded.
 * @module
 */

const OMP_SYMBOLS = {
  omp_get_max_threads: { parameters: [], result: "i32" },
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

/** The OpenMP runtime's thread-count functions. */
export type OpenMp = Deno.DynamicLibrary<typeof OMP_SYMBOLS>;
let openMp: OpenMp | null | undefined;

/**
 * The OpenMP runtime oneDNN and the native kernels run on (already loaded with them), or
 * undefined. The handle is opened once and never closed: the runtime's worker threads outlive
 * every parallel region, and unloading it under them (closing the last library that linked
 * it, as disabling the fast path did) crashed the next parallel region inside libgomp.
 */
export function openMpRuntime(): OpenMp | undefined {
  if (openMp !== undefined) return openMp ?? undefined;
  openMp = null;
  for (const name of ["libgomp.so.1", "libomp.so", "libiomp5.so"]) {
    try {
      openMp = Deno.dlopen(name, OMP_SYMBOLS);
      break;
    } catch {
      // try the next runtime
    }
  }
  return openMp ?? undefined;
}
