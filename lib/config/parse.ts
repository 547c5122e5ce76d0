/**
 * Validation of config values against a zod schema with one-line errors that name the source
 * (file or flag), the field path and the expected value, and JSON file reading that names the
 * file on a syntax error.
 * @module
 */
import type { z } from "zod";
import { ConfigError } from "./errors.ts";

type Issue = z.core.$ZodIssue;

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) =>
    typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`
  )
    .join("");
}

/** The most telling branch of a failed union: the one that got furthest into the value. */
function bestUnionBranch(branches: Issue[][]): Issue[] | null {
  const deep = branches.find((b) => b.some((i) => i.path.length > 0));
  if (deep) return deep;
  const typed = branches.filter((b) => !b.every((i) => i.code === "invalid_type"));
  return typed.length === 1 ? typed[0] : null;
}

function issueLines(issue: Issue, prefix: readonly PropertyKey[]): string[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => `${pathText([...path, k])}: unknown field`);
  }
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    const best = bestUnionBranch(issue.errors);
    if (best) return best.flatMap((i) => issueLines(i, path));
    const options = issue.errors.map((b) => b.map((i) => plain(i.message)).join(", "));
    return [`${pathText(path) || "(root)"}: ${options.join(" or ")}`];
  }
  return [`${pathText(path) || "(root)"}: ${plain(issue.message)}`];
}

function plain(message: string): string {
  return message.replace(/^Invalid (input|option): /, "");
}

/**
 * The one-line description of a zod error: `<path>: <expected>` per issue, joined by "; ".
 * Unknown fields read `optimizer.lrr: unknown field`.
 */
export function formatIssues(error: z.ZodError): string {
  return error.issues.flatMap((i) => issueLines(i, [])).join("; ");
}

/**
 * Validates `value` against `schema`; throws a {@link ConfigError} `<source>: <path>: <expected>`
 * (all issues on one line) when it does not match.
 * @param source the file or flag the value came from, named in the error.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source: string,
): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ConfigError(`${source}: ${formatIssues(r.error)}`);
  return r.data;
}

/** Reads and parses a JSON file; an unreadable file or a syntax error is a {@link ConfigError} naming it. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new ConfigError(`${path}: cannot read config (${why})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: invalid JSON (${(e as Error).message})`);
  }
}
