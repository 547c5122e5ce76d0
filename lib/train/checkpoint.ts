/**
 * Checkpoints of a run directory, written atomically.
 *
 * Layout: `<run>/checkpoints/step_00000100/` holds `model.json` + `model.weights.bin` (a
 * tfjs-compatible pair that `tf.loadLayersModel` reads through {@link loadLayersModelFiles}
 * or any file handler), one such pair per extra model, `state.json` (step, RNG and data
 * iterator state, config, the index of `arrays.bin`) and `arrays.bin` (optimiser moments,
 * EMA weights: float32, little-endian). A checkpoint is first written into a temporary
 * directory and renamed into place when complete; `<run>/checkpoints/latest` (written via
 * temp file + rename) names the newest complete one. Older ones are pruned after that.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Writes `data` to `path` atomically: a temp file in the same directory, then rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

/** True when `path` exists (a missing path is false; other errors are thrown). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Saves `model` as `<dir>/<name>.json` + `<dir>/<name>.weights.bin` in the tfjs
 * `model.json` format (weightsManifest pointing at the .bin file).
 */
export async function saveLayersModelFiles(
  model: tf.LayersModel,
  dir: string,
  name = "model",
): Promise<void> {
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = new Uint8Array(
      tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)),
    );
    const json = {
      format: "layers-model",
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: [`${name}.weights.bin`], weights: artifacts.weightSpecs }],
    };
    await Deno.writeFile(`${dir}/${name}.weights.bin`, weights);
    await Deno.writeTextFile(`${dir}/${name}.json`, JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
}

/**
 * Saves `model` as the model directory `dir` (`model.json` + `model.weights.bin`) atomically:
 * written into a `.tmp-*` sibling, then renamed into place (an existing `dir` is moved aside
 * first and deleted after), so `dir` never holds a half-written model. A kill between the two
 * renames leaves only `.tmp-*` directories, which {@link removeStaleTemporaries} removes.
 */
export async function saveModelDirAtomic(model: tf.LayersModel, dir: string): Promise<void> {
  const cut = dir.lastIndexOf("/");
  const parent = cut >= 0 ? dir.slice(0, cut) : ".";
  const base = dir.slice(cut + 1);
  const tag = crypto.randomUUID().slice(0, 8);
  const tmp = `${parent}/.tmp-${base}-${tag}`;
  await Deno.mkdir(tmp, { recursive: true });
  await saveLayersModelFiles(model, tmp);
  const old = `${parent}/.tmp-old-${base}-${tag}`;
  const replaced = await pathExists(dir);
  if (replaced) await Deno.rename(dir, old);
  await Deno.rename(tmp, dir);
  if (replaced) await Deno.remove(old, { recursive: true });
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/**
 * Loads a model saved by {@link saveLayersModelFiles} (or any single-shard tfjs
 * `model.json`). Throws an error naming the file when the weights file is shorter or
 * longer than its manifest says.
 */
export async function loadLayersModelFiles(dir: string, name = "model"): Promise<tf.LayersModel> {
  const jsonPath = `${dir}/${name}.json`;
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await Deno.readTextFile(jsonPath));
  } catch (e) {
    throw new Error(`cannot read model file ${jsonPath}: ${(e as Error).message}`);
  }
  const manifest = json.weightsManifest ?? [];
  const specs = manifest.flatMap((g) => g.weights);
  const parts = await Promise.all(
    manifest.flatMap((g) => g.paths).map((p) => Deno.readFile(`${dir}/${p}`)),
  );
  const total = parts.reduce((a, p) => a + p.length, 0);
  const expected = specs.reduce(
    (a, s) => a + s.shape.reduce((x, y) => x * y, 1) * (DTYPE_BYTES[s.dtype] ?? 4),
    0,
  );
  if (total !== expected) {
    throw new Error(
      `weights of ${jsonPath} (${manifest.flatMap((g) => g.paths).join(", ")}) have ${total} ` +
        `bytes but the manifest needs ${expected}: truncated or mismatched checkpoint`,
    );
  }
  const data = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: data.buffer,
  }));
}

/** What a checkpoint holds besides the models. */
export interface CheckpointPayload {
  /** Optimiser step (number of updates applied). */
  step: number;
  /** Named float32 arrays (optimiser moments, EMA weights, ...). */
  arrays: Record<string, Float32Array[]>;
  /** JSON-serialisable state: RNG, data iterator, config, anything else. */
  state: Record<string, unknown>;
}

interface StateFile {
  step: number;
  models: string[];
  arrays: Record<string, number[]>;
  state: Record<string, unknown>;
}

/**
 * Name of the checkpoint directory for a step (zero-padded so names sort by step). A step
 * saved again (e.g. a finished run resumed) gets a revision suffix `-r1`, `-r2`, ... so that
 * the earlier checkpoint of that step stays in place until `latest` has moved.
 */
export function checkpointName(step: number, revision = 0): string {
  const base = `step_${String(step).padStart(8, "0")}`;
  return revision > 0 ? `${base}-r${revision}` : base;
}

/** Step and revision of a checkpoint directory name, or null for other names. */
function parseCheckpointName(name: string): { step: number; revision: number } | null {
  const m = /^step_(\d+)(?:-r(\d+))?$/.exec(name);
  return m ? { step: Number(m[1]), revision: Number(m[2] ?? 0) } : null;
}

async function checkpointNames(root: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(root)) {
    if (e.isDirectory && parseCheckpointName(e.name)) names.push(e.name);
  }
  const key = (n: string) => parseCheckpointName(n)!;
  return names.sort((a, b) => key(a).step - key(b).step || key(a).revision - key(b).revision);
}

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Checkpoints to keep (the newest ones, `latest` included). Default 2. */
  keep?: number;
  /**
   * Extra files (name -> contents) written into the checkpoint directory before it is
   * published, so they are part of the same atomic write (e.g. a memory queue).
   */
  files?: Record<string, string | Uint8Array>;
}

/**
 * Writes a complete checkpoint of `models`, `payload` and `options.files` under
 * `<runDir>/checkpoints`: everything goes into a temporary directory first, which is renamed
 * to a name no other checkpoint has; then `latest` is replaced atomically to name it, and
 * only then are checkpoints beyond the newest `keep` removed. A kill at any point leaves
 * `latest` naming a complete checkpoint (the previous one until the switch).
 * @returns the checkpoint directory.
 */
export async function saveCheckpoint(
  runDir: string,
  models: Record<string, tf.LayersModel>,
  payload: CheckpointPayload,
  options: SaveCheckpointOptions = {},
): Promise<string> {
  const root = `${runDir}/checkpoints`;
  await Deno.mkdir(root, { recursive: true });
  const existing = await checkpointNames(root);
  const revisions = existing.map(parseCheckpointName).filter((p) => p!.step === payload.step);
  const name = checkpointName(
    payload.step,
    revisions.length === 0 ? 0 : Math.max(...revisions.map((p) => p!.revision)) + 1,
  );
  const tmp = `${root}/.tmp-${name}-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(tmp);
  for (const [modelName, model] of Object.entries(models)) {
    await saveLayersModelFiles(model, tmp, modelName);
  }
  const index: Record<string, number[]> = {};
  const chunks: Uint8Array[] = [];
  for (const [key, list] of Object.entries(payload.arrays)) {
    index[key] = list.map((a) => a.length);
    for (const a of list) chunks.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  const bin = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    bin.set(c, o);
    o += c.length;
  }
  await Deno.writeFile(`${tmp}/arrays.bin`, bin);
  for (const [file, data] of Object.entries(options.files ?? {})) {
    if (typeof data === "string") await Deno.writeTextFile(`${tmp}/${file}`, data);
    else await Deno.writeFile(`${tmp}/${file}`, data);
  }
  const stateFile: StateFile = {
    step: payload.step,
    models: Object.keys(models),
    arrays: index,
    state: payload.state,
  };
  await Deno.writeTextFile(`${tmp}/state.json`, JSON.stringify(stateFile));
  const final = `${root}/${name}`;
  await Deno.rename(tmp, final);
  await writeFileAtomic(`${root}/latest`, name);
  const keep = Math.max(1, options.keep ?? 2);
  for (const old of existing.filter((n) => n !== name).slice(0, -(keep - 1) || undefined)) {
    await Deno.remove(`${root}/${old}`, { recursive: true });
  }
  return final;
}

/** True for the names of temporaries: `.tmp-*` directories and `*.<8 hex>.tmp` files. */
export function isTemporaryName(name: string): boolean {
  return name.startsWith(".tmp-") || /\.[0-9a-f]{8}\.tmp$/.test(name);
}

/**
 * Removes what killed writes leave behind in a run directory: `.tmp-*` directories
 * (checkpoints being written, a run being deleted) and `*.tmp` files (from
 * {@link writeFileAtomic}), in the run directory and in its `checkpoints/`. Call it only when no other process writes there.
 * @returns the removed paths.
 */
export async function removeStaleTemporaries(runDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of [runDir, `${runDir}/checkpoints`]) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    for (const e of entries) {
      if (isTemporaryName(e.name)) {
        await Deno.remove(`${dir}/${e.name}`, { recursive: true });
        removed.push(`${dir}/${e.name}`);
      }
    }
  }
  return removed;
}

/** A checkpoint read back by {@link loadCheckpoint}. */
export interface LoadedCheckpoint extends CheckpointPayload {
  /** The checkpoint directory. */
  dir: string;
  /** Names of the models saved in it (load each with {@link loadLayersModelFiles}). */
  models: string[];
}

/** The step of the checkpoint `latest` names (read from its state.json), or null if none. */
export async function latestCheckpointStep(runDir: string): Promise<number | null> {
  const latest = `${runDir}/checkpoints/latest`;
  if (!(await pathExists(latest))) return null;
  const dir = `${runDir}/checkpoints/${(await Deno.readTextFile(latest)).trim()}`;
  return (JSON.parse(await Deno.readTextFile(`${dir}/state.json`)) as StateFile).step;
}

/**
 * Reads the checkpoint that `<runDir>/checkpoints/latest` names, or null when the run has
 * none. Throws an error naming the file when `state.json` or `arrays.bin` is damaged.
 */
export async function loadCheckpoint(runDir: string): Promise<LoadedCheckpoint | null> {
  const root = `${runDir}/checkpoints`;
  const latest = `${root}/latest`;
  if (!(await pathExists(latest))) return null;
  const dir = `${root}/${(await Deno.readTextFile(latest)).trim()}`;
  const statePath = `${dir}/state.json`;
  let sf: StateFile;
  try {
    sf = JSON.parse(await Deno.readTextFile(statePath));
  } catch (e) {
    throw new Error(`checkpoint file ${statePath} is unreadable: ${(e as Error).message}`);
  }
  const binPath = `${dir}/arrays.bin`;
  const bin = await Deno.readFile(binPath);
  const need = Object.values(sf.arrays).flat().reduce((a, n) => a + 4 * n, 0);
  if (bin.length !== need) {
    throw new Error(
      `checkpoint file ${binPath} has ${bin.length} bytes but state.json needs ${need}: ` +
        `truncated or mismatched checkpoint`,
    );
  }
  const arrays: Record<string, Float32Array[]> = {};
  let o = 0;
  for (const [key, lengths] of Object.entries(sf.arrays)) {
    arrays[key] = lengths.map((n) => {
      const a = new Float32Array(bin.slice(o, o + 4 * n).buffer);
      o += 4 * n;
      return a;
    });
  }
  return { dir, models: sf.models, step: sf.step, arrays, state: sf.state };
}
