/**
 * Expansion of a sweep spec into cells: variants (named dotted-path overrides, crossed with
 * the grid axes) x seeds. Each cell's config is the kind's defaults, then `base`, then the
 * overrides, validated by the cell schema; its id is a hash of that resolved config and the
 * seed, so editing the spec (adding a variant or a seed) keeps the id of every other cell.
 * @module
 */
import {
  type CellConfig,
  parseCellConfig,
  type SweepSpec,
  sweepSpecSchema,
} from "../config/sweep.ts";
import { ConfigError } from "../config/errors.ts";
import { DISTILL_DEFAULTS } from "../cli/distill.ts";
import { parseWith, readJsonFile } from "../config/parse.ts";

const { seed: _seed, ...DISTILL_CELL_DEFAULTS } = DISTILL_DEFAULTS;

/** Defaults of each cell kind (relative paths are relative to the working directory). */
export const CELL_DEFAULTS: Record<CellConfig["kind"], Record<string, unknown>> = {
  "distill-round": {
    kind: "distill-round",
    teacherRun: "data/teacher",
    student: "data/student_2step/model",
    teacherSteps: 2,
    classifier: "data/classifier/model",
    referenceStats: "data/mnist_cfid_reference.json",
    method: "pd",
    rdd: {},
    optimizer: { lr: 1e-4 },
    steps: 150,
    batchSize: 32,
    checkpointEvery: 25,
    logEvery: 10,
    evalSamples: 1000,
    evalSeed: 12345,
  },
  eval: {
    kind: "eval",
    teacherRun: "data/teacher",
    classifier: "data/classifier/model",
    referenceStats: "data/mnist_cfid_reference.json",
    sampler: "ddim",
    steps: 8,
    evalSamples: 1000,
    evalSeed: 12345,
  },
  train: {
    kind: "train",
    classifier: "data/classifier/model",
    referenceStats: "data/mnist_cfid_reference.json",
    evalSteps: [8],
    evalSamples: 1000,
    evalSeed: 12345,
  },
  // The settings of `deno task distill` (one home for them), with the shipped input runs.
  distill: {
    ...DISTILL_CELL_DEFAULTS,
    teacherRun: "data/teacher",
    classifierRun: "data/classifier",
  },
};

/** One variant: a name and its dotted-path overrides of the base config. */
export interface Variant {
  /** Variant name (grid points append `path=value`). */
  name: string;
  /** Dotted path -> value. */
  overrides: Record<string, unknown>;
}

/** One cell: a variant at one seed, with its resolved config and stable id. */
export interface Cell {
  /** Stable id: hash of the resolved config and the seed (16 hex digits). */
  id: string;
  /** Variant name. */
  variant: string;
  /** The variant's overrides. */
  overrides: Record<string, unknown>;
  /** The seed (init, data order, timesteps, noise, queue; evaluation noise when evalSeed is null). */
  seed: number;
  /** The resolved, validated config. */
  config: CellConfig;
}

/** A validated, expanded sweep. */
export interface ExpandedSweep {
  /** The spec as validated. */
  spec: SweepSpec;
  /** Variants in order. */
  variants: Variant[];
  /** Cells: variants x seeds. */
  cells: Cell[];
}

/** A deep copy of `base` with `value` at the dotted `path` (intermediate objects created). */
export function setPath(
  base: Record<string, unknown>,
  path: string,
  value: unknown,
): Record<string, unknown> {
  const [head, ...rest] = path.split(".");
  if (rest.length === 0) return { ...base, [head]: value };
  const inner = base[head];
  const obj = inner !== null && typeof inner === "object" && !Array.isArray(inner)
    ? inner as Record<string, unknown>
    : {};
  return { ...base, [head]: setPath(obj, rest.join("."), value) };
}

/** JSON with object keys sorted at every level (the canonical form that ids hash). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The stable id of a cell: SHA-256 of the canonical resolved config and seed, 16 hex digits. */
export async function cellId(config: CellConfig, seed: number): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson({ config, seed }));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

function gridPoints(grid: Record<string, unknown[]>): Variant[] {
  let points: Variant[] = [{ name: "", overrides: {} }];
  for (const [path, values] of Object.entries(grid)) {
    points = points.flatMap((p) =>
      values.map((v) => ({
        name: `${p.name}${p.name ? "," : ""}${path}=${JSON.stringify(v)}`,
        overrides: { ...p.overrides, [path]: v },
      }))
    );
  }
  return points;
}

/** The variants of a validated spec: `variants` x grid points (either may be absent). */
export function expandVariants(spec: SweepSpec, source: string): Variant[] {
  if (!spec.variants && !spec.grid) {
    throw new ConfigError(`${source}: variants: give at least one variant or a grid axis`);
  }
  const named: Variant[] = spec.variants ?? [{ name: "", overrides: {} }];
  const grid = spec.grid ? gridPoints(spec.grid) : [{ name: "", overrides: {} }];
  const out = named.flatMap((v) =>
    grid.map((g) => ({
      name: [v.name, g.name].filter((s) => s).join(" "),
      overrides: { ...v.overrides, ...g.overrides },
    }))
  );
  const seen = new Set<string>();
  spec.variants?.forEach((v, i) => {
    if (seen.has(v.name)) {
      throw new ConfigError(`${source}: variants[${i}].name: duplicate variant name "${v.name}"`);
    }
    seen.add(v.name);
  });
  if (spec.baseline !== undefined && !out.some((v) => v.name === spec.baseline)) {
    throw new ConfigError(
      `${source}: baseline: "${spec.baseline}" is not a variant (${
        out.map((v) => `"${v.name}"`).join(", ")
      })`,
    );
  }
  return out;
}

/** Options of {@link expandSweep}. */
export interface ExpandOptions {
  /** Apply the spec's `fast` profile (its overrides on every cell, its seeds). */
  fast?: boolean;
  /** Named in error messages (the spec file). Default "spec". */
  source?: string;
}

/**
 * Validates `value` as a sweep spec and expands it into cells. Every error (unknown field,
 * unknown override path, bad value, empty or duplicate variants, unknown baseline) is a
 * {@link ConfigError} naming the field, raised before anything runs.
 */
export async function expandSweep(value: unknown, o: ExpandOptions = {}): Promise<ExpandedSweep> {
  const source = o.source ?? "spec";
  const spec = parseWith(sweepSpecSchema, value, source);
  const seeds = new Set<number>();
  spec.seeds.forEach((s, i) => {
    if (seeds.has(s)) throw new ConfigError(`${source}: seeds[${i}]: duplicate seed ${s}`);
    seeds.add(s);
  });
  const variants = expandVariants(spec, source);
  const base = { ...CELL_DEFAULTS[spec.base.kind], ...spec.base };
  if (base.kind === "train" && typeof base.run === "string") {
    // A run config file: its contents are the base (overrides reach into them; ids hash them),
    // and the cell's seed replaces the file's.
    const file = await readJsonFile(base.run);
    if (file === null || typeof file !== "object" || Array.isArray(file)) {
      throw new ConfigError(`${base.run}: expected a run config object`);
    }
    const { $schema: _, seed: _fileSeed, ...run } = file as Record<string, unknown>;
    base.run = run;
  }
  const fast = o.fast ? spec.fast?.overrides ?? {} : {};
  const cells: Cell[] = [];
  const byConfig = new Map<string, string>();
  for (const v of variants) {
    let raw: Record<string, unknown> = base;
    for (const [path, value] of Object.entries({ ...v.overrides, ...fast })) {
      raw = setPath(raw, path, value);
    }
    const label = v.name ? `variant "${v.name}"` : "base";
    const config = parseCellConfig(raw, `${source}: ${label}`);
    const key = canonicalJson(config);
    const twin = byConfig.get(key);
    if (twin !== undefined) {
      throw new ConfigError(
        `${source}: variants: "${v.name}" resolves to the same config as "${twin}"`,
      );
    }
    byConfig.set(key, v.name);
    for (const seed of o.fast && spec.fast?.seeds ? spec.fast.seeds : spec.seeds) {
      cells.push({
        id: await cellId(config, seed),
        variant: v.name,
        overrides: v.overrides,
        seed,
        config,
      });
    }
  }
  // Seed-major order (every variant at the first seed, then the next seed, ...): a sweep that
  // is stopped part-way leaves complete, paired seeds rather than whole missing variants.
  const seedOrder = [...new Set(cells.map((c) => c.seed))];
  cells.sort((a, b) => seedOrder.indexOf(a.seed) - seedOrder.indexOf(b.seed));
  return { spec, variants, cells };
}

/** Reads a spec file and expands it ({@link expandSweep}); errors name the file. */
export async function readSweepSpec(
  path: string,
  o: Omit<ExpandOptions, "source"> = {},
): Promise<ExpandedSweep> {
  return await expandSweep(await readJsonFile(path), { ...o, source: path });
}
