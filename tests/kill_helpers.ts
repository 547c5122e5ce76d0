/**
 * Fault injection for the crash-safety tests: simulates a process killed just before a
 * given file-system write.
 * @module
 */

/** The file-system writes that {@link killedAt} counts. */
export const FS_WRITES = ["mkdir", "writeFile", "writeTextFile", "rename", "remove"] as const;

/**
 * Runs `fn` as a process killed just before its `k`-th file-system write (0-based; mkdir,
 * writeFile, writeTextFile, rename, remove): that write and every later one fail, as after
 * a kill. `k` < 0: not killed. Returns the number of writes `fn` attempted.
 */
export async function killedAt(k: number, fn: () => Promise<unknown>): Promise<number> {
  const d = Deno as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = FS_WRITES.map((n) => d[n]);
  let count = 0;
  FS_WRITES.forEach((n, i) => {
    d[n] = (...a: unknown[]) => {
      if (k >= 0 && count++ >= k) throw new Error("killed");
      if (k < 0) count++;
      return saved[i].apply(Deno, a);
    };
  });
  try {
    await fn();
  } catch (e) {
    if ((e as Error).message !== "killed") throw e;
  } finally {
    FS_WRITES.forEach((n, i) => d[n] = saved[i]);
  }
  return count;
}
