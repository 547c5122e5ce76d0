/**
 * The JSON Schema files shipped in `configs/schema/` (referenced by the `$schema` field of
 * each config so editors check it). `deno task schemas` regenerates them from the zod
 * schemas; a test checks that the shipped files equal the generated ones.
 * @module
 */
import { runConfigJsonSchema } from "./run.ts";
import { distillConfigJsonSchema } from "./distill.ts";

/** Path (relative to the repository root) -> generated JSON Schema. */
export function configSchemaFiles(): Record<string, Record<string, unknown>> {
  return {
    "configs/schema/run.schema.json": runConfigJsonSchema(),
    "configs/schema/distill.schema.json": distillConfigJsonSchema(),
  };
}

if (import.meta.main) {
  await Deno.mkdir("configs/schema", { recursive: true });
  for (const [path, schema] of Object.entries(configSchemaFiles())) {
    await Deno.writeTextFile(path, JSON.stringify(schema, null, 2) + "\n");
    console.log(`wrote ${path}`);
  }
}
