import * as tf from "@tensorflow/tfjs-core";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  BACKEND_PREFERENCES,
  describeBackend,
  isSoftwareAdapterName,
  parseBackendPreference,
  probeAdapter,
  selectBackend,
} from "../lib/tfjs/backend.ts";

/** Runs `fn` with env variables set (undefined = unset), restoring the old values after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>) {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      x === undefined ? Deno.env.delete(k) : Deno.env.set(k, x);
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(old);
  }
}

const adapter = await probeAdapter();

Deno.test("parseBackendPreference accepts the valid names in any case", () => {
  for (const p of BACKEND_PREFERENCES) {
    assertEquals(parseBackendPreference(p, "prefer"), p);
    assertEquals(parseBackendPreference(` ${p.toUpperCase()} `, "RDD_BACKEND"), p);
  }
});

Deno.test("unknown names are rejected naming the source and the valid values", async () => {
  const e = assertThrows(() => parseBackendPreference("gpu", "prefer"), RangeError, "prefer");
  for (const p of BACKEND_PREFERENCES) assertStringIncludes(e.message, `"${p}"`);
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => selectBackend({ prefer: "tpu" as any }),
    RangeError,
    "prefer must be one of",
  );
  await withEnv({ RDD_BACKEND: "webgl" }, async () => {
    const err = await assertRejects(() => selectBackend(), RangeError, "RDD_BACKEND");
    assertStringIncludes(err.message, '"webgl"');
    assertStringIncludes(err.message, '"wasm"');
  });
});

Deno.test("RDD_BACKEND chooses when no option is given; the option wins over it", async () => {
  await withEnv({ RDD_BACKEND: "cpu" }, async () => {
    const r = await selectBackend();
    assertEquals([r.name, r.requested, r.source], ["cpu", "cpu", "env"]);
    assertEquals(tf.getBackend(), "cpu");
    assertStringIncludes(r.reason, "RDD_BACKEND");
  });
  await withEnv({ RDD_BACKEND: "not-a-backend" }, async () => {
    const r = await selectBackend({ prefer: "cpu" });
    assertEquals([r.name, r.source], ["cpu", "option"]);
    assertEquals(r.adapter, undefined, "an explicit cpu choice does not probe WebGPU");
  });
});

Deno.test("the CPU choice reports the fast kernels; RDD_FAST_CPU=0 and fastCpu: false turn them off", async () => {
  await withEnv({ RDD_FAST_CPU: undefined }, async () => {
    const on = await selectBackend({ prefer: "cpu" });
    const f = on.fastCpu!;
    assert(f !== undefined);
    // Enabled exactly when it names its library; otherwise it must say why not.
    assertEquals(f.enabled, f.library !== undefined && f.registered.length > 0);
    if (!f.enabled) assert((f.reason ?? "").length > 0);
    assertStringIncludes(describeBackend(on), f.enabled ? "fast CPU: on" : "fast CPU: off");
    if (f.enabled) {
      assertStringIncludes(
        describeBackend(on),
        f.native ? "native kernels on" : `native kernels off (${f.nativeReason})`,
      );
    }
  });
  await withEnv({ RDD_FAST_CPU: "0" }, async () => {
    const off = await selectBackend({ prefer: "cpu" });
    assertEquals(off.fastCpu?.enabled, false);
    assertEquals(off.fastCpu?.registered, []);
    assertStringIncludes(off.fastCpu?.reason ?? "", "RDD_FAST_CPU=0");
  });
  const explicit = await selectBackend({ prefer: "cpu", fastCpu: false });
  assertStringIncludes(explicit.fastCpu?.reason ?? "", "fastCpu: false");
  await withEnv({ RDD_FAST_CPU: "yes" }, async () => {
    await assertRejects(() => selectBackend({ prefer: "cpu" }), RangeError, "RDD_FAST_CPU");
  });
});

Deno.test("software adapters are recognised by name", () => {
  for (
    const name of [
      "llvmpipe (LLVM 15.0.6, 256 bits)",
      "lavapipe",
      "SwiftShader Device (Subzero)",
      "Microsoft Basic Render Driver",
    ]
  ) assert(isSoftwareAdapterName(name), name);
  for (
    const name of ["NVIDIA GeForce RTX 4090", "Apple M2 Pro", "AMD Radeon RX 7900", "Intel Arc"]
  ) {
    assert(!isSoftwareAdapterName(name), name);
  }
});

Deno.test("probeAdapter fills every field", () => {
  if (!adapter) {
    console.log("no WebGPU adapter on this machine: nothing to check in probeAdapter");
    return;
  }
  for (const k of ["vendor", "architecture", "device", "description"] as const) {
    assertEquals(typeof adapter[k], "string", k);
  }
  assert(adapter.vendor !== "" || adapter.description !== "", "adapter names itself");
  if (adapter.isFallbackAdapter || isSoftwareAdapterName(adapter.description)) {
    assert(adapter.isSoftware);
  }
});

Deno.test({
  name: "auto takes a hardware adapter, and a software one only when allowed",
  fn: async () => {
    const r = await selectBackend({ prefer: "auto" });
    assertEquals(r.requested, "auto");
    assertEquals(r.adapter, adapter);
    if (adapter && !adapter.isSoftware) {
      assertEquals(r.name, "webgpu");
    } else {
      assertEquals(r.name, "cpu");
      assertMatch(r.reason, adapter ? /software/ : /no WebGPU adapter/);
      assert(r.fastCpu !== undefined);
    }
    if (adapter?.isSoftware) {
      const allowed = await selectBackend({ prefer: "auto", allowSoftwareGpu: true });
      assertEquals(allowed.name, "webgpu");
      assertEquals(tf.getBackend(), "webgpu");
      assertStringIncludes(describeBackend(), "[software]");
    }
    await selectBackend({ prefer: "cpu" });
  },
});

Deno.test("without an adapter: auto falls back to cpu and explicit webgpu is an error", async () => {
  const gpu = navigator.gpu as GPU & { requestAdapter: GPU["requestAdapter"] };
  if (!gpu) {
    assertEquals(adapter, undefined);
  } else {
    // Hide the adapter for this test only (own property shadows the prototype method).
    Object.defineProperty(gpu, "requestAdapter", {
      value: () => Promise.resolve(null),
      configurable: true,
    });
  }
  try {
    assertEquals(await probeAdapter(), undefined);
    const r = await selectBackend({ prefer: "auto" });
    assertEquals([r.name, r.adapter, r.reason], ["cpu", undefined, "auto: no WebGPU adapter"]);
    await assertRejects(() => selectBackend({ prefer: "webgpu" }), Error, "no adapter");
  } finally {
    if (gpu) delete (gpu as unknown as Record<string, unknown>).requestAdapter;
  }
  assertEquals(await probeAdapter(), adapter, "the real adapter is back");
});

Deno.test("describeBackend names the backend and the reason", async () => {
  const r = await selectBackend({ prefer: "cpu", log: false });
  const line = describeBackend(r);
  assert(line.startsWith("tfjs backend cpu (asked for by prefer)"), line);
  assertEquals(describeBackend(), line, "defaults to the last selection");
  assert(!line.includes("\n"), "one line");
});
