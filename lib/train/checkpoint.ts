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

async function exists(path: string): Promise<boolean> {
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

/** Name of the checkpoint directory for a step (zero-padded so names sort by step). */
export function checkpointName(step: number): string {
  return `step_${String(step).padStart(8, "0")}`;
}

/**
 * Writes a complete checkpoint of `models` and `payload` under `<runDir>/checkpoints`,
 * atomically, then points `latest` at it and keeps only the newest `keep` checkpoints.
 * @returns the checkpoint directory.
 */
export async function saveCheckpoint(
  runDir: string,
  models: Record<string, tf.LayersModel>,
  payload: CheckpointPayload,
  keep = 2,
): Promise<string> {
  const root = `${runDir}/checkpoints`;
  await Deno.mkdir(root, { recursive: true });
  const name = checkpointName(payload.step);
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
  const stateFile: StateFile = {
    step: payload.step,
    models: Object.keys(models),
    arrays: index,
    state: payload.state,
  };
  await Deno.writeTextFile(`${tmp}/state.json`, JSON.stringify(stateFile));
  const final = `${root}/${name}`;
  if (await exists(final)) await Deno.remove(final, { recursive: true });
  await Deno.rename(tmp, final);
  await writeFileAtomic(`${root}/latest`, name);
  await pruneCheckpoints(root, keep);
  return final;
}

async function pruneCheckpoints(root: string, keep: number): Promise<void> {
  const names: string[] = [];
  for await (const e of Deno.readDir(root)) {
    if (e.isDirectory && /^step_\d+$/.test(e.name)) names.push(e.name);
  }
  names.sort();
  for (const n of names.slice(0, Math.max(0, names.length - keep))) {
    await Deno.remove(`${root}/${n}`, { recursive: true });
  }
}

/** A checkpoint read back by {@link loadCheckpoint}. */
export interface LoadedCheckpoint extends CheckpointPayload {
  /** The checkpoint directory. */
  dir: string;
  /** Names of the models saved in it (load each with {@link loadLayersModelFiles}). */
  models: string[];
}

/**
 * Reads the checkpoint that `<runDir>/checkpoints/latest` names, or null when the run has
 * none. Throws an error naming the file when `state.json` or `arrays.bin` is damaged.
 */
export async function loadCheckpoint(runDir: string): Promise<LoadedCheckpoint | null> {
  const root = `${runDir}/checkpoints`;
  const latest = `${root}/latest`;
  if (!(await exists(latest))) return null;
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
