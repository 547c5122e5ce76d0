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

/**
 * Runs `body` as a script in its own Deno process (after an import of openNative), with
 * `permissions`; the temporary directory holding it is `dir` inside the body.
 */
async function runScript(body: (dir: string) => string, permissions: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "native_probe_" });
  try {
    const script = `${dir}/probe.ts`;
    const native = new URL("lib/tfjs/native.ts", `file://${ROOT}`).href;
    await Deno.writeTextFile(script, `import { openNative } from "${native}";\n${body(dir)}`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, script],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: text(out.stdout).trim(), stderr: text(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("openNative: without --allow-run for the compiler it says so", async () => {
  const out = await runScript(
    (dir) => `console.log(JSON.stringify(openNative({ cacheDir: "${dir}/cache" })));\n`,
    ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"],
  );
  assertEquals(out.code, 0, out.stderr);
  assertMatch(JSON.parse(out.stdout.split("\n").pop()!).reason, /^not permitted: /);
});

Deno.test("native kernels: closing them never unloads the OpenMP runtime under its threads", async () => {
  // Exiting (or closing the library) right after a parallel region, while libgomp's workers
  // still spin, used to unmap the runtime under them: a segfault on exit.
  const body = () =>
    `for (let i = 0; i < 3; i++) {\n` +
    `  const r = openNative();\n` +
    `  if (!("kernels" in r)) throw new Error(r.reason);\n` +
    `  const p = new Float32Array(37 * 203).map(Math.random), q = p.map(Math.random);\n` +
    `  r.kernels.klRows(p, q, 203, new Float64Array(37));\n` +
    `  r.kernels.close();\n` +
    `}\n`;
  for (let run = 0; run < 2; run++) {
    const out = await runScript(body, ["--allow-all"]);
    assertEquals(out.code, 0, out.stderr);
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
    const logits = new Float32Array(12);
    assertThrows(
      () => k.klRows(logits, logits, 5, new Float64Array(2)),
      RangeError,
      "k: expected a divisor of the 12 logits, got 5",
    );
    assertThrows(
      () => k.klRows(logits, new Float32Array(8), 4, new Float64Array(3)),
      RangeError,
      "q: expected 12 values, got 8",
    );
    assertThrows(
      () => k.klRows(logits, logits, 4, new Float64Array(2)),
      RangeError,
      "kl: expected 3 values, got 2",
    );
    assertThrows(
      () => k.klRowsGrad(logits, logits, 4, 1, new Float32Array(11)),
      RangeError,
      "dq: expected 12 values, got 11",
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

/** Every output of the kernels on one set of inputs. */
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
  const p = noise(37 * 203, 5, 6), q = noise(p.length, 6, 6);
  const kl = new Float64Array(37), dq = new Float32Array(p.length);
  k.klRows(p, q, 203, kl);
  k.klRowsGrad(p, q, 203, 0.5, dq);
  return { ...fwd, ...bwd, mask, kl, dq };
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
