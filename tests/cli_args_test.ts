import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "@std/assert";
import {
  type CommandSpec,
  helpText,
  parseFlags,
  runCommand,
  UsageError,
  wantsHelp,
} from "../lib/cli/args.ts";

const SPEC = {
  usage: "deno task x -- --in FILE",
  summary: "A test command.",
  flags: {
    in: { type: "string", required: true, placeholder: "FILE", description: "input" },
    n: { type: "int", min: 1, default: 3, description: "count" },
    lr: { type: "number", above: 0, description: "rate" },
    mode: { type: "string", choices: ["a", "b"], description: "mode" },
    force: { type: "boolean", description: "start over" },
  },
} as const satisfies CommandSpec;

Deno.test("parseFlags: with and without a leading --, typed values and defaults", () => {
  const want = { in: "f", n: 3, lr: 2e-4, mode: undefined, force: true };
  assertEquals(parseFlags(SPEC, ["--in", "f", "--lr", "2e-4", "--force"]), want);
  assertEquals(parseFlags(SPEC, ["--", "--in", "f", "--lr", "2e-4", "--force"]), want);
  assertEquals(parseFlags(SPEC, ["--in=f", "--n", "7", "--mode", "b"]).n, 7);
});

Deno.test("parseFlags: every bad command line is a UsageError naming the flag", () => {
  const bad: [string[], string][] = [
    [["--in", "f", "--lerning-rate", "1"], "unknown flag --lerning-rate (see --help)"],
    [["--in", "f", "extra"], "Unexpected argument 'extra' (flags are --name value)"],
    [[], "--in is required (see --help)"],
    [["--in"], "--in: a value is required"],
    [["--in", "f", "--n", "0"], '--n: expected an integer >= 1, got "0"'],
    [["--in", "f", "--n", "2.5"], '--n: expected an integer >= 1, got "2.5"'],
    [["--in", "f", "--n", "3x"], '--n: expected an integer >= 1, got "3x"'],
    [["--in", "f", "--lr", "0"], '--lr: expected a number > 0, got "0"'],
    [["--in", "f", "--lr", ""], '--lr: expected a number > 0, got ""'],
    [["--in", "f", "--lr", "0x10"], '--lr: expected a number > 0, got "0x10"'],
    [["--in", "f", "--mode", "c"], '--mode must be "a" or "b", got "c"'],
  ];
  for (const [args, message] of bad) {
    const e = assertThrows(() => parseFlags(SPEC, args), UsageError);
    assertEquals(e.message, message, args.join(" "));
  }
});

Deno.test("helpText lists every flag with its default and range; --help is seen anywhere", () => {
  const h = helpText(SPEC);
  assertStringIncludes(h, "usage: deno task x -- --in FILE");
  assertStringIncludes(h, "--in FILE");
  assertStringIncludes(h, "input (required)");
  assertStringIncludes(h, "count (default 3; an integer >= 1)");
  assertStringIncludes(h, "--mode a|b");
  assertStringIncludes(h, "rate (a number > 0)");
  assertStringIncludes(h, "--help, -h");
  assertEquals(wantsHelp(["--", "--in", "f", "--help"]), true);
  assertEquals(wantsHelp(["-h"]), true);
  assertEquals(wantsHelp(["--in", "--helpful"]), false);
});

Deno.test("runCommand passes the parsed flags; internal errors propagate with their stack", async () => {
  let got: unknown;
  await runCommand(SPEC, async (f) => {
    got = await Promise.resolve(f.n);
  }, ["--in", "f", "--n", "5"]);
  assertEquals(got, 5);
  const e = await assertRejects(
    () => runCommand(SPEC, () => Promise.reject(new TypeError("bug")), ["--in", "f"]),
    TypeError,
    "bug",
  );
  assertStringIncludes(e.stack ?? "", "at ");
});
