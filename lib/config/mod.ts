/**
 * Config schemas and validation (zod): run configs (`deno task train`), distill configs
 * (`deno task distill`), their JSON Schemas, and the error type of bad config input.
 *
 * - `parseRunConfig(obj, source)`, `parseDistillConfig(obj, source)`: validate an object,
 *   throwing a `ConfigError` `<source>: <field path>: <expected>`.
 * - `runConfigSchema`, `distillConfigSchema`: the zod schemas (e.g. for sweep specs that embed
 *   or resolve to configs).
 * - `runConfigJsonSchema()`, `distillConfigJsonSchema()`: what `configs/schema/*.schema.json`
 *   hold.
 * - `readJsonFile(path)`: JSON of a file, with the file named in errors.
 * @module
 */
export * from "./errors.ts";
export * from "./parse.ts";
export * from "./run.ts";
export * from "./distill.ts";
