import { assert, assertEquals, assertLess, assertMatch, assertThrows } from "@std/assert";
import { type NativeKernels, openNative } from "../lib/tfjs/native.ts";
import { disableFastCpu, enableFastCpu, fastCpuNative } from "../lib/tfjs/fast_cpu.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("openNative: builds once into the cache directory (removing older builds), then reuses the library", async () => {
  const dir = await Deno.makeTempDir({ prefix: "native_cache_" });
  try {
    await Deno.writeTextFile(`${dir}/kernels-0123456789abcdef.so`, "an earlier build");
    await Deno.writeTextFile(`${dir}/notes.txt`, "not a build");
    const first = openNative({ cacheDir: dir });
    assert("kernels" in first, "reason" in first ? first.reason : "");
    first.kernels.close();
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((f) => f !== "notes.txt");
    assertEquals(files.length, 1, `only the new library, no temporary files: ${files}`);
    assertMatch(files[0], /^kernels-[0-9a-f]{16}\.so$/);
    const built = Deno.statSync(`${dir}/${files[0]}`).mtime;
    const second = openNative({ cacheDir: dir });
    assert("kernels" in second, "reason" in second ? second.reason : "");
    assertEquals(second.kernels.path, `${dir}/${files[0]}`);
    second.kernels.close();
    assertEquals(Deno.statSync(`${dir}/${files[0]}`).mtime, built);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openNative: a missing or failing compiler is a reason, not an error, and leaves no file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "native_cache_" });
  try {
    const missing = openNative({ cacheDir: dir, compiler: "/nonexistent/cc" });
    assert("reason" in missing);
    assertEquals(missing.reason, "no C compiler /nonexistent/cc found");
    const failing = openNative({ cacheDir: dir, compiler: "false" });
    assert("reason" in failing);
    assertMatch(failing.reason, /^false failed \(exit 1\)/);
    assertEquals([...Deno.readDirSync(dir)].length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openNative: without --allow-run for the compiler it says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "native_cache_" });
  try {
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { openNative } from "${new URL("lib/tfjs/native.ts", `file://${ROOT}`).href}";\n` +
        `console.log(JSON.stringify(openNative({ cacheDir: "${dir}/cache" })));\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", script],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert(out.success, new TextDecoder().decode(out.stderr));
    assertMatch(JSON.parse(text.split("\n").pop()!).reason, /^not permitted: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("native kernels: array sizes and groups are checked before the call", () => {
  const r = openNative();
  assert("kernels" in r, "reason" in r ? r.reason : "");
  const k = r.kernels;
  try {
    const d = { b: 2, hw: 3, c: 4, groups: 2 };
    const act = () => new Float32Array(24), ch = () => new Float32Array(4);
    const stats = () => ({ mean: new Float32Array(4), rstd: new Float32Array(4) });
    assertThrows(
      () =>
        k.groupNormForward(act(), ch(), ch(), { ...d, groups: 3 }, 1e-5, true, {
          y: act(),
          ...stats(),
        }),
      RangeError,
      "groups: expected a divisor of 4 channels, got 3",
    );
    assertThrows(
      () =>
        k.groupNormForward(new Float32Array(23), ch(), ch(), d, 1e-5, true, {
          y: act(),
          ...stats(),
        }),
      RangeError,
      "x: expected 24 values, got 23",
    );
    assertThrows(
      () =>
        k.groupNormBackward(act(), ch(), ch(), stats(), act(), d, true, {
          dx: act(),
          dgamma: new Float32Array(3),
          dbeta: ch(),
        }),
      RangeError,
      "dgamma: expected 4 values, got 3",
    );
  } finally {
    k.close();
  }
});

Deno.test("enableFastCpu: native kernels on by default, off with native: false or RDD_NATIVE=0", () => {
  try {
    const on = enableFastCpu();
    assert(on.native && fastCpuNative()?.path === on.native, on.nativeReason);
    disableFastCpu();
    assertEquals(fastCpuNative(), undefined);
    const off = enableFastCpu({ native: false });
    assertEquals(off.native, undefined);
    assertEquals(off.nativeReason, "turned off (native: false or RDD_NATIVE=0)");
    disableFastCpu();
    Deno.env.set("RDD_NATIVE", "0");
    assertEquals(enableFastCpu().nativeReason, "turned off (native: false or RDD_NATIVE=0)");
  } finally {
    Deno.env.delete("RDD_NATIVE");
    disableFastCpu();
  }
});

/** Deterministic pseudo-random floats in [-spread, spread). */
function noise(n: number, seed: number, spread: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 * 2 - 1) * spread;
  });
}

/** Every output of the three kernels on one set of inputs. */
function outputs(k: NativeKernels) {
  const d = { b: 3, hw: 20, c: 24, groups: 6 };
  const x = noise(d.b * d.hw * d.c, 1, 3), dy = noise(x.length, 2, 1);
  const gamma = noise(d.c, 3, 2), beta = noise(d.c, 4, 1);
  const fwd = {
    y: new Float32Array(x.length),
    mean: new Float32Array(d.b * d.groups),
    rstd: new Float32Array(d.b * d.groups),
  };
  k.groupNormForward(x, gamma, beta, d, 1e-5, true, fwd);
  const bwd = {
    dx: new Float32Array(x.length),
    dgamma: new Float32Array(d.c),
    dbeta: new Float32Array(d.c),
  };
  k.groupNormBackward(x, gamma, beta, { mean: fwd.mean, rstd: fwd.rstd }, dy, d, true, bwd);
  const mask = new Float32Array(100_003);
  k.dropoutMask(mask, 12345, Math.round(0.3 * 2 ** 32), 1 / 0.7);
  return { ...fwd, ...bwd, mask };
}

Deno.test("native kernels: the AVX2 and SSE2 builds of the loops agree with the loader's choice", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "native_cache_" });
  const main = openNative();
  assert("kernels" in main, "reason" in main ? main.reason : "");
  const want = outputs(main.kernels);
  main.kernels.close();
  try {
    for (const march of ["x86-64-v3", "x86-64"]) {
      await t.step(march, () => {
        const r = openNative({
          cacheDir: dir,
          extraFlags: ["-DRDD_SINGLE_TARGET", `-march=${march}`],
        });
        assert("kernels" in r, "reason" in r ? r.reason : "");
        const got = outputs(r.kernels);
        r.kernels.close();
        for (const [name, values] of Object.entries(got)) {
          const ref = want[name as keyof typeof want];
          let worst = 0;
          values.forEach((v, i) =>
            worst = Math.max(worst, Math.abs(v - ref[i]) / (1e-2 + Math.abs(ref[i])))
          );
          assertLess(worst, name === "mask" ? 1e-30 : 1e-5, `${march} ${name}`);
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
