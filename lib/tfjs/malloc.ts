/**
 * glibc malloc settings for the fast CPU path. Every tfjs kernel output is a fresh typed array
 * (megabytes per tensor, hundreds per training step); by default glibc serves such sizes with
 * fresh `mmap`s and returns freed heap tops to the OS, so each new array page-faults in zeroed
 * pages again. With mmap off and trimming at 2 GiB, freed memory is reused from the heap:
 * mnist train step 278-288 -> 277-279 ms, forward (batch 64) 180-184 -> 165-173 ms on a
 * 2-core AVX-512 Xeon (2026-12-03). Memory stayed flat over 500 training steps with these
 * settings (bench/RESULTS.md, `deno task bench:memory`). The cost: freed memory stays with the
 * process (RSS keeps near its peak until the process ends); `enableFastCpu({ tuneMalloc: false })`
 * keeps glibc's defaults.
 * @module
 */

/** The settings as glibc's mallopt parameters: [M_MMAP_MAX, 0], [M_TRIM_THRESHOLD, 2^31 - 1]. */
const SETTINGS = [[-4, 0], [-1, 2 ** 31 - 1]] as const;

/**
 * The same settings as environment variables, for child processes of other runtimes (the
 * PyTorch side of the bench runs with them too).
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_MAX_: `${SETTINGS[0][1]}`,
  MALLOC_TRIM_THRESHOLD_: `${SETTINGS[1][1]}`,
};

/**
 * Applies the settings to this process through glibc's `mallopt` (needs --allow-ffi); returns
 * false, changing nothing, where there is no glibc (macOS, musl) or no FFI permission.
 */
export function tuneMalloc(): boolean {
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", { mallopt: { parameters: ["i32", "i32"], result: "i32" } });
  } catch {
    return false;
  }
  try {
    return SETTINGS.every(([param, value]) => libc.symbols.mallopt(param, value) === 1);
  } finally {
    libc.close();
  }
}
