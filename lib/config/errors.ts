/**
 * The errors of bad user input. Their message is one line naming the flag, file or field and
 * what was expected, and commands print it without a stack trace, exit code 2 (`runCommand` in
 * lib/cli/args.ts). Every kind of user error extends {@link UserError}.
 * @module
 */

/** Bad user input (flag, config, run directory); the message is one line naming it. */
export class UserError extends Error {
  /** An error with a one-line message naming the bad input and what was expected. */
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** A config file or value is unreadable or invalid; the message names the file and field. */
export class ConfigError extends UserError {
  /** An error with a one-line message `<file>: <field path>: <what was expected>`. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
