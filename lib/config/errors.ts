/**
 * The error of bad user input in a config file or value: its message is one line naming the
 * file (or flag) and the field path with what was expected, and commands print it without a
 * stack trace (see `runCommand` in lib/cli/args.ts).
 * @module
 */

/** A config file or value is unreadable or invalid; the message names the file and field. */
export class ConfigError extends Error {
  /** An error with a one-line message `<file>: <field path>: <what was expected>`. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
