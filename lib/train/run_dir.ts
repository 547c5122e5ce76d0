/**
 * The run-directory policy, shared by `deno task train`, `deno task distill` and notebooks:
 *
 * - a new (absent or empty) directory starts a run and gets the config as `config.json`;
 * - an existing run is never overwritten silently: `resume` continues it, `force` starts
 *   over (the old contents are moved into a `.tmp-*` folder, then deleted), anything else is
 *   refused with a {@link RunDirError} that names the directory;
 * - a resume may change only the fields of {@link SAFE_RESUME_FIELDS} (learning-rate
 *   schedule, total steps, logging, checkpoint and evaluation settings). Each change is
 *   appended to `run_history.jsonl` ({@link HistoryEntry}) and config.json is replaced; any
 *   other change is refused naming its field path, and a refused resume writes nothing.
 * @module
 */
import {
  isTemporaryName,
  latestCheckpointStep,
  removeStaleTemporaries,
  writeFileAtomic,
} from "./checkpoint.ts";
import { UserError } from "../config/errors.ts";

/**
 * Config fields (dotted paths) that a resume may change. They are read afresh by the
 * trainer on resume (the lr schedule is evaluated with the new values from the resumed step
 * on) and change neither the model nor the meaning of the saved state. Covers run configs
 * (`deno task train`), distillation configs and the per-round configs of distillation.
 */
export const SAFE_RESUME_FIELDS: readonly string[] = Object.freeze([
  "optimizer.lr",
  "optimizer.minLr",
  "optimizer.warmupSteps",
  "optimizer.cosineDecay",
  "optimizer.totalSteps",
  "steps",
  "stepsPerRound",
  "doubleShortRounds",
  "logEvery",
  "checkpointEvery",
  "evalEvery",
  "sampleSteps",
  "evalSamples",
  "evalSeed",
  "evalMaxSteps",
  "evalTeacher",
]);

/** A user error about a run directory (the CLIs print its message as one line). */
export class RunDirError extends UserError {
  /** An error with a one-line message naming the run directory. */
  constructor(message: string) {
    super(message);
    this.name = "RunDirError";
  }
}

/** One changed leaf of a config: its dotted path, and the old and new values. */
export interface ConfigChange {
  /** Dotted path, e.g. `optimizer.lr`; arrays are compared as whole values. */
  field: string;
  /** Saved value (undefined when absent). */
  old: unknown;
  /** New value (undefined when absent). */
  new: unknown;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The leaves in which `now` differs from `saved` (JSON semantics: absent = undefined;
 * arrays and other non-objects compared as JSON values), in a stable order.
 */
export function configChanges(saved: unknown, now: unknown, prefix = ""): ConfigChange[] {
  if (isRecord(saved) && isRecord(now)) {
    const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])].sort();
    return keys.flatMap((k) => configChanges(saved[k], now[k], prefix ? `${prefix}.${k}` : k));
  }
  if (JSON.stringify(saved) === JSON.stringify(now)) return [];
  return [{ field: prefix, old: saved, new: now }];
}

/** True when `field` is one of `safe` or lies below one of them. */
function isSafe(field: string, safe: readonly string[]): boolean {
  return safe.some((s) => field === s || field.startsWith(`${s}.`));
}

/** The changes of `changes` that are not covered by `safe`. */
export function unsafeChanges(
  changes: readonly ConfigChange[],
  safe: readonly string[] = SAFE_RESUME_FIELDS,
): ConfigChange[] {
  return changes.filter((c) => !isSafe(c.field, safe));
}

/** One line of `run_history.jsonl`: a config field changed by a resume. */
export interface HistoryEntry {
  /** ISO time of the resume. */
  time: string;
  /** Step of the checkpoint the run resumed from (null: none, e.g. a distillation run). */
  step: number | null;
  /** Dotted path of the field. */
  field: string;
  /** Value before (null when absent). */
  old: unknown;
  /** Value after (null when absent). */
  new: unknown;
}

/** File name of the history of config changes inside a run directory. */
export const RUN_HISTORY_FILE = "run_history.jsonl";

/** The history of a run directory (empty when nothing was ever changed). */
export async function readRunHistory(runDir: string): Promise<HistoryEntry[]> {
  try {
    const text = await Deno.readTextFile(`${runDir}/${RUN_HISTORY_FILE}`);
    return text.split("\n").filter((l) => l).map((l) => JSON.parse(l));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

const show = (v: unknown) => v === undefined ? "absent" : JSON.stringify(v);

/** `field (saved X, now Y)` for each change, comma-separated (an absent value is "absent"). */
export function describeChanges(changes: readonly ConfigChange[]): string {
  return changes.map((c) => `${c.field} (saved ${show(c.old)}, now ${show(c.new)})`).join(", ");
}

/** Options of {@link openRunDir}. */
export interface OpenRunDirOptions {
  /** Continue an existing run (safe config changes are allowed and recorded). */
  resume?: boolean;
  /** Start over in an existing run directory, deleting its contents. */
  force?: boolean;
  /** Fields a resume may change; default {@link SAFE_RESUME_FIELDS}. */
  safeFields?: readonly string[];
}

/** What {@link openRunDir} did. */
export interface OpenedRunDir {
  /** "new": nothing was there; "restarted": --force cleared a run; "resumed": continued. */
  mode: "new" | "restarted" | "resumed";
  /** The config changes a resume applied (recorded in the history). */
  changes: ConfigChange[];
}

async function entriesOf(dir: string): Promise<string[] | null> {
  try {
    if (!(await Deno.stat(dir)).isDirectory) {
      throw new RunDirError(`run directory ${dir} exists and is not a directory`);
    }
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Deletes the contents of a run directory: `checkpoints/` is moved away first (so nothing
 * of the old run can be resumed), config.json last; everything goes into one `.tmp-*`
 * folder (removed at the next start if this is killed), which is then deleted.
 */
async function clearRun(runDir: string, names: string[]): Promise<void> {
  const trash = `${runDir}/.tmp-old-run-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(trash);
  const order = (n: string) => n === "checkpoints" ? 0 : n === "config.json" ? 2 : 1;
  for (const n of [...names].sort((a, b) => order(a) - order(b))) {
    await Deno.rename(`${runDir}/${n}`, `${trash}/${n}`);
  }
  await Deno.remove(trash, { recursive: true });
}

/**
 * Opens `runDir` for a run of `config` under the policy of this module (see the module
 * doc), writing `config.json` (and the history) only when the run may go ahead; then also
 * removes temporaries of killed writes. A refused call changes nothing on disk.
 * @throws RunDirError naming the directory (and for a refused resume, the fields).
 */
export async function openRunDir(
  runDir: string,
  config: unknown,
  options: OpenRunDirOptions = {},
): Promise<OpenedRunDir> {
  if (options.resume && options.force) {
    throw new RunDirError("--resume and --force exclude each other: pass one of them");
  }
  const names = (await entriesOf(runDir))?.filter((n) => !isTemporaryName(n)) ?? null;
  const configPath = `${runDir}/config.json`;
  const writeConfig = async () => {
    await removeStaleTemporaries(runDir);
    await writeFileAtomic(configPath, JSON.stringify(config, null, 2));
  };
  if (names === null || names.length === 0) {
    await Deno.mkdir(runDir, { recursive: true });
    await writeConfig();
    return { mode: "new", changes: [] };
  }
  if (!names.includes("config.json")) {
    throw new RunDirError(
      `${runDir} is not empty and holds no config.json (not a run directory): ` +
        `choose another --run`,
    );
  }
  if (!options.resume && !options.force) {
    throw new RunDirError(
      `${runDir} already holds a run: pass --resume to continue it, --force to start over ` +
        `(deletes it), or choose another --run`,
    );
  }
  if (options.force) {
    await clearRun(runDir, names);
    await writeConfig();
    return { mode: "restarted", changes: [] };
  }
  let saved: unknown;
  try {
    saved = JSON.parse(await Deno.readTextFile(configPath));
  } catch (e) {
    throw new RunDirError(`cannot read ${configPath}: ${(e as Error).message}`);
  }
  const changes = configChanges(saved, config);
  const bad = unsafeChanges(changes, options.safeFields ?? SAFE_RESUME_FIELDS);
  if (bad.length > 0) {
    throw new RunDirError(
      `cannot resume ${runDir}: ${describeChanges(bad)} ${
        bad.length > 1 ? "differ" : "differs"
      }; ` +
        `a resume may change only ${
          (options.safeFields ?? SAFE_RESUME_FIELDS).join(", ")
        }. Use --force to start over or choose another --run`,
    );
  }
  if (changes.length > 0) {
    const step = await latestCheckpointStep(runDir);
    const time = new Date().toISOString();
    const lines = changes.map((c) =>
      JSON.stringify({ time, step, field: c.field, old: c.old ?? null, new: c.new ?? null })
    );
    const before = (await readRunHistory(runDir)).map((h) => JSON.stringify(h));
    await writeFileAtomic(
      `${runDir}/${RUN_HISTORY_FILE}`,
      [...before, ...lines].map((l) => l + "\n").join(""),
    );
    await writeConfig();
  } else await removeStaleTemporaries(runDir);
  return { mode: "resumed", changes };
}
