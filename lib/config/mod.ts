/**
 * Config schemas and validation (zod): run configs (`deno task train`), distill configs
 * (`deno task distill`), their JSON Schemas, and the error type of bad config input.
 *
 * - `parseRunConfig(obj, source)`, `parseDistillConfig(obj, source)`: validate an object,
 *   throwing a `ConfigError` `<source>: <field path>: <expected>`; `parseDistillConfigFile`
 *   validates a partial distill config (a `--config` file).
 * - `runConfigSchema`, `teacherRunConfigSchema`, `classifierRunConfigSchema`,
 *   `distillConfigSchema`, `distillConfigFileSchema`: the zod schemas (typed `z.ZodType<T>`;
 *   e.g. for sweep specs that embed or resolve to configs); `parseWith(schema, value, source)`
 *   and `formatIssues(error)` give the same one-line errors for other schemas.
 * - `RunConfig`, `TeacherRunConfig`, `ClassifierRunConfig`, `DistillRunConfig`: the types,
 *   checked at compile time to equal the schemas' outputs.
 * - `runConfigJsonSchema()`, `distillConfigJsonSchema()`: what `configs/schema/*.schema.json`
 *   hold (`deno task schemas` writes them).
 * - `readJsonFile(path)`: JSON of a file, with the file named in errors.
 * - `UserError` (base of every user-input error), `ConfigError`.
 * @module
 */
export * from "./errors.ts";
export * from "./parse.ts";
export * from "./run.ts";
export * from "./distill.ts";
