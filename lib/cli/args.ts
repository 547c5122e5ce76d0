/**
 * Command-line handling shared by every `deno task` command: one flag table per command gives
 * the parser (node:util `parseArgs`, strict: unknown flags and stray arguments are errors), the
 * typed values (numbers and integers checked before any work, choices, required flags) and the
 * `--help` text with each flag's default. A leading `--` (Deno 2.9 passes the one of
 * `deno task NAME -- --flag` on to the script) is dropped, so both documented forms work.
 *
 * {@link runCommand} runs a command's main function: `--help` prints the help and exits 0; a
 * user error (a `UserError`: {@link UsageError} for flags, `ConfigError` for config files,
 * `RunDirError` for run directories) is printed as ONE
 * line on stderr with exit code 2 and no stack trace; any other error keeps its trace.
 * @module
 */
import { parseArgs } from "node:util";
import { checkOneOf } from "../core/checks.ts";
import { UserError } from "../config/errors.ts";

/** A bad command line (unknown flag, bad value, missing flag); the message names the flag. */
export class UsageError extends UserError {
  /** An error with a one-line message such as `--lr: expected a number > 0, got "0"`. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One flag of a command. */
export interface FlagSpec {
  /** "string", "boolean" (no value), "number" (any decimal number) or "int". */
  readonly type: "string" | "boolean" | "number" | "int";
  /** One line for `--help`. */
  readonly description: string;
  /** Value when the flag is absent (shown in `--help`). Booleans default to false. */
  readonly default?: string | number;
  /** Smallest allowed value of a number/int flag (inclusive). */
  readonly min?: number;
  /** The value must be greater than this (number flags, e.g. 0 for a learning rate). */
  readonly above?: number;
  /** Allowed values of a string flag. */
  readonly choices?: readonly string[];
  /** The flag must be given. */
  readonly required?: boolean;
  /** Name of the value in `--help` (default FILE/N/X/VALUE by type). */
  readonly placeholder?: string;
}

/** A command: its usage line, what it does, and its flags (keys are the flag names). */
export interface CommandSpec {
  /** Usage line, e.g. `deno task train -- --config FILE [flags]`. */
  readonly usage: string;
  /** One or two sentences for `--help`. */
  readonly summary: string;
  /** The flags (without `--help`, which every command has). */
  readonly flags: Readonly<Record<string, FlagSpec>>;
}

/** The value type of one flag. */
export type FlagValue<S extends FlagSpec> = S["type"] extends "boolean" ? boolean
  : S["type"] extends "number" | "int" ? number
  : S extends { choices: readonly (infer C extends string)[] } ? C
  : string;

/** Parsed values of a flag table: flags without default or `required` may be undefined. */
export type FlagValues<F extends Readonly<Record<string, FlagSpec>>> = {
  -readonly [K in keyof F]: F[K] extends { type: "boolean" } | { default: unknown } | {
    required: true;
  } ? FlagValue<F[K]>
    : FlagValue<F[K]> | undefined;
};

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function describeRange(s: FlagSpec): string {
  const what = s.type === "int" ? "an integer" : "a number";
  if (s.above !== undefined) return `${what} > ${s.above}`;
  if (s.min !== undefined) return `${what} >= ${s.min}`;
  return what;
}

/** Converts and checks one flag's text; throws a {@link UsageError} naming the flag. */
function flagValue(name: string, s: FlagSpec, text: string): string | number {
  if (s.type === "string") {
    if (s.choices) asUsage(() => checkOneOf(`--${name}`, text, s.choices!));
    return text;
  }
  const n = DECIMAL.test(text.trim()) ? Number(text) : NaN;
  const bad = () => new UsageError(`--${name}: expected ${describeRange(s)}, got "${text}"`);
  const ok = Number.isFinite(n) && (s.type !== "int" || Number.isInteger(n)) &&
    !(s.min !== undefined && n < s.min) && !(s.above !== undefined && !(n > s.above));
  if (!ok) throw bad();
  return n;
}

function asUsage(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

/** Node's parseArgs messages, as one line naming the flag. */
function parseError(e: Error & { code?: string }): UsageError {
  const flag = e.message.match(/'(-[^' ]+)/)?.[1];
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UsageError(`unknown flag ${flag} (see --help)`);
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UsageError(`${e.message.replace(/\. .*$/, "")} (flags are --name value)`);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return new UsageError(
        flag?.includes("<value>") || /argument missing/.test(e.message)
          ? `${flag ?? "a flag"}: a value is required`
          : `${flag}: takes no value`,
      );
    default:
      return new UsageError(e.message);
  }
}

/** True when the arguments ask for help (`--help` or `-h`, with or without a leading `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  return dropLeadingDashes(args).some((a) => a === "--help" || a === "-h");
}

function dropLeadingDashes(args: readonly string[]): string[] {
  return args[0] === "--" ? args.slice(1) : [...args];
}

/**
 * Parses `args` against the flag table of `spec`: drops a leading `--`, rejects unknown flags
 * and stray arguments, converts and checks every value (numbers, integers, ranges, choices,
 * required flags) and fills in defaults. Throws a {@link UsageError} naming the flag.
 */
export function parseFlags<C extends CommandSpec>(
  spec: C,
  args: readonly string[],
): FlagValues<C["flags"]> {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const [name, s] of Object.entries(spec.flags)) {
    options[name] = { type: s.type === "boolean" ? "boolean" : "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: dropLeadingDashes(args), options, strict: true }));
  } catch (e) {
    if (e instanceof TypeError) throw parseError(e);
    throw e;
  }
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const [name, s] of Object.entries(spec.flags)) {
    const v = values[name];
    if (s.type === "boolean") {
      out[name] = v === true;
    } else if (typeof v === "string") {
      out[name] = flagValue(name, s, v);
    } else if (s.required) {
      throw new UsageError(`--${name} is required (see --help)`);
    } else {
      out[name] = s.default;
    }
  }
  return out as FlagValues<C["flags"]>;
}

function placeholder(s: FlagSpec): string {
  if (s.type === "boolean") return "";
  if (s.placeholder) return ` ${s.placeholder}`;
  if (s.choices) return ` ${s.choices.join("|")}`;
  return s.type === "int" ? " N" : s.type === "number" ? " X" : " VALUE";
}

/** The `--help` text of a command: usage, summary, and each flag with its default. */
export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.flags).map(([name, s]) => {
    const notes = [
      s.required ? "required" : "",
      s.default !== undefined ? `default ${s.default}` : "",
      s.type !== "boolean" && s.type !== "string" ? describeRange(s) : "",
    ].filter(Boolean);
    const suffix = notes.length ? ` (${notes.join("; ")})` : "";
    return [`--${name}${placeholder(s)}`, `${s.description}${suffix}`];
  });
  rows.push(["--help, -h", "print this help and exit"]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return [
    `usage: ${spec.usage}`,
    "",
    spec.summary,
    "",
    "flags:",
    ...rows.map(([f, d]) => `  ${f.padEnd(w)}  ${d}`),
  ].join("\n");
}

/**
 * What `--check` prints once every input is valid: `check passed: ` and the resolved settings
 * as JSON (one line), so a command can be verified before it is queued.
 */
export function printCheck(settings: Record<string, unknown>): void {
  console.log(`check passed: ${JSON.stringify(settings)}`);
}

/**
 * Runs a command: on `--help`/`-h` prints {@link helpText} and returns (exit 0); otherwise
 * parses the flags ({@link parseFlags}) and awaits `main(flags)`. A user error (any
 * `UserError` of lib/config/errors.ts) is printed as one line `error: <message>` on stderr
 * and the process exits with code 2, without a stack trace; other errors propagate with their
 * stack (Deno exits 1).
 */
export async function runCommand<C extends CommandSpec>(
  spec: C,
  main: (flags: FlagValues<C["flags"]>) => Promise<void>,
  args: readonly string[] = Deno.args,
): Promise<void> {
  if (wantsHelp(args)) {
    console.log(helpText(spec));
    return;
  }
  try {
    await main(parseFlags(spec, args));
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    console.error(`error: ${e.message.replaceAll("\n", " ")}`);
    Deno.exit(2);
  }
}
