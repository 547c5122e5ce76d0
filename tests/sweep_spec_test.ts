import { assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { ConfigError } from "../lib/config/errors.ts";
import { canonicalJson, expandSweep, readSweepSpec, setPath } from "../lib/sweep/spec.ts";

const base = {
  name: "t",
  base: { kind: "distill-round", steps: 5 },
  variants: [
    { name: "PD", overrides: { method: "pd" } },
    { name: "RDD", overrides: { method: "rdd", "rdd.isp2pWeight": 0.5 } },
  ],
  seeds: [0, 1],
  metrics: ["cfid", "cfid@1", "finalLoss"],
  baseline: "PD",
};

async function rejects(spec: unknown, pattern: RegExp) {
  const e = await assertRejects(() => expandSweep(spec, { source: "s.json" }), ConfigError);
  if (!pattern.test(e.message)) throw new Error(`message ${e.message} does not match ${pattern}`);
  assertEquals(e.message.includes("\n"), false);
}

Deno.test("spec validation: errors name the field before anything runs", async () => {
  await rejects({ ...base, seed: [1] }, /^s\.json: seed: unknown field/);
  await rejects({ ...base, variants: [] }, /^s\.json: variants: at least one variant/);
  await rejects({ ...base, variants: undefined }, /variants: give at least one variant or a grid/);
  await rejects(
    { ...base, variants: [base.variants[0], { name: "PD", overrides: { steps: 2 } }] },
    /variants\[1\]\.name: duplicate variant name "PD"/,
  );
  await rejects(
    {
      ...base,
      variants: [{ name: "x", overrides: { "rdd.isp2pWieght": 0 } }],
      baseline: undefined,
    },
    /variant "x": rdd\.isp2pWieght: unknown field/,
  );
  await rejects(
    { ...base, variants: [{ name: "x", overrides: { stepz: 3 } }], baseline: undefined },
    /variant "x": stepz: unknown field/,
  );
  await rejects({ ...base, baseline: "RCFD" }, /baseline: "RCFD" is not a variant/);
  await rejects({ ...base, metrics: ["fid"] }, /metrics\[0\]/);
  await rejects({ ...base, seeds: [1, 1] }, /seeds\[1\]: duplicate seed 1/);
  await rejects({ ...base, base: { kind: "trainer" } }, /base\.kind/);
  await rejects(
    { ...base, variants: [...base.variants, { name: "PD again", overrides: { method: "pd" } }] },
    /"PD again" resolves to the same config as "PD"/,
  );
});

Deno.test("cell ids: stable under adding a variant or a seed, and changed by a real edit", async () => {
  const a = await expandSweep(base);
  assertEquals(a.cells.length, 4);
  const b = await expandSweep({
    ...base,
    variants: [{ name: "RCFD", overrides: { method: "rcfd" } }, ...base.variants],
    seeds: [2, 0, 1],
  });
  const ids = new Map(b.cells.map((c) => [`${c.variant}/${c.seed}`, c.id]));
  for (const c of a.cells) assertEquals(ids.get(`${c.variant}/${c.seed}`), c.id);
  assertEquals(b.cells.length, 9);
  // Renaming a variant keeps its cells (the id is of the config, not of the name) ...
  const renamed = await expandSweep({
    ...base,
    variants: [{ ...base.variants[0], name: "plain PD" }, base.variants[1]],
    baseline: "plain PD",
  });
  assertEquals(renamed.cells.map((c) => c.id), a.cells.map((c) => c.id));
  // ... while changing what a cell computes changes its id.
  const longer = await expandSweep({ ...base, base: { ...base.base, steps: 6 } });
  assertNotEquals(longer.cells[0].id, a.cells[0].id);
});

Deno.test("grid axes: cartesian product crossed with the variants, named by path=value", async () => {
  const g = await expandSweep({
    ...base,
    baseline: undefined,
    grid: { "optimizer.lr": [1e-4, 2e-4], batchSize: [8, 16] },
  });
  assertEquals(g.variants.length, 2 * 4);
  assertEquals(g.variants[0].name, "PD optimizer.lr=0.0001,batchSize=8");
  const first = { ...g.cells[0].config } as Record<string, unknown>;
  const fourth: unknown = g.cells.find((c) => c.variant === g.variants[3].name)!.config;
  assertEquals(fourth, {
    ...first,
    optimizer: { lr: 2e-4 },
    batchSize: 16,
  });
});

Deno.test("setPath and canonicalJson", () => {
  const o = { a: { b: 1, c: 2 }, d: 3 };
  assertEquals(setPath(o, "a.b", 5), { a: { b: 5, c: 2 }, d: 3 });
  assertEquals(o.a.b, 1);
  assertEquals(setPath(o, "x.y", 1), { ...o, x: { y: 1 } });
  assertEquals(
    canonicalJson({ b: [1, { d: 1, c: 2 }], a: null }),
    '{"a":null,"b":[1,{"c":2,"d":1}]}',
  );
});

Deno.test("shipped specs validate: smoke and the RDD ablation", async () => {
  const smoke = await readSweepSpec("sweeps/smoke.json");
  assertEquals(smoke.cells.length, 4);
  const ab = await readSweepSpec("sweeps/rdd_ablation.json");
  assertEquals(ab.variants.map((v) => v.name), [
    "PD",
    "RCFD",
    "RCFD+IS_P2P",
    "RCFD+M_P2P",
    "RDD",
    "RDD reference-reshape",
    "RCFD+RKD",
  ]);
  assertEquals(ab.cells.length, 7 * 5);
  for (const c of ab.cells) {
    if (c.config.kind !== "distill-round") throw new Error("ablation cells are distill-round");
    assertEquals([c.config.steps, c.config.batchSize, c.config.optimizer.lr], [150, 32, 1e-4]);
    assertEquals([c.config.evalSamples, c.config.evalSeed], [1000, 12345]);
  }
  assertEquals((await readSweepSpec("sweeps/rdd_ablation.json", { fast: true })).cells.length, 7);
});
