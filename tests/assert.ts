/**
 * Local stand-in for the `@std/assert` API, built on Deno's built-in `node:assert`.
 *
 * The import map in `deno.json` maps `@std/assert` to this file because the JSR registry
 * is not reachable from our machines. When it is, change that one alias to
 * `jsr:@std/assert` and nothing else. Only the subset of the API our tests use is here,
 * with the same names, argument orders and semantics.
 * @module
 */
import nodeAssert from "node:assert";

/** Error thrown by every assertion here (same name as in `@std/assert`). */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

function wrap(fn: () => void, msg?: string): void {
  try {
    fn();
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new AssertionError(msg ? `${msg}: ${detail}` : detail);
  }
}

/** Asserts that `expr` is truthy. */
export function assert(expr: unknown, msg = "Expected expression to be truthy"): asserts expr {
  if (!expr) throw new AssertionError(msg);
}

/** Asserts deep equality (structural, strict) of `actual` and `expected`. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  wrap(() => nodeAssert.deepStrictEqual(actual, expected), msg);
}

/** Asserts deep inequality of `actual` and `expected`. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  wrap(() => nodeAssert.notDeepStrictEqual(actual, expected), msg);
}

/** Asserts `actual === expected` (same reference or primitive value). */
export function assertStrictEquals<T>(actual: unknown, expected: T, msg?: string): void {
  wrap(() => nodeAssert.strictEqual(actual, expected), msg);
}

/** Asserts `actual !== expected` (different references or primitive values). */
export function assertNotStrictEquals<T>(actual: T, expected: T, msg?: string): void {
  wrap(() => nodeAssert.notStrictEqual(actual, expected), msg);
}

/**
 * Asserts `|actual - expected| <= tolerance`. As in `@std/assert`, the default tolerance
 * is 1e-7 relative to `expected` (absolute when `expected` is 0).
 */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance?: number,
  msg?: string,
): void {
  if (Object.is(actual, expected)) return;
  const tol = tolerance ?? Math.abs(expected * 1e-7);
  const delta = Math.abs(expected - actual);
  if (!(delta <= tol)) {
    const m = `Expected actual: "${actual}" to be close to "${expected}": delta "${delta}" ` +
      `is greater than "${tol}"`;
    throw new AssertionError(msg ? `${msg}: ${m}` : m);
  }
}

/** Asserts `actual > expected`. */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual > expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} > ${expected}`);
  }
}

/** Asserts `actual >= expected`. */
export function assertGreaterOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual >= expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} >= ${expected}`);
  }
}

/** Asserts `actual < expected`. */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual < expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} < ${expected}`);
  }
}

/** Asserts `actual <= expected`. */
export function assertLessOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual <= expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} <= ${expected}`);
  }
}

/** Asserts that `actual` contains the substring `expected`. */
export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  if (!actual.includes(expected)) {
    throw new AssertionError(msg ?? `Expected actual: "${actual}" to contain: "${expected}"`);
  }
}

/** Asserts that `actual` matches the regular expression `expected`. */
export function assertMatch(actual: string, expected: RegExp, msg?: string): void {
  if (!expected.test(actual)) {
    throw new AssertionError(msg ?? `Expected actual: "${actual}" to match: "${expected}"`);
  }
}

/** Asserts that `actual` is an instance of `expectedType`. */
export function assertInstanceOf<T extends abstract new (...args: never[]) => unknown>(
  actual: unknown,
  expectedType: T,
  msg?: string,
): asserts actual is InstanceType<T> {
  if (!(actual instanceof expectedType)) {
    throw new AssertionError(msg ?? `Expected object to be an instance of "${expectedType.name}"`);
  }
}

function checkError(
  e: unknown,
  ErrorClass?: abstract new (...args: never[]) => Error,
  msgIncludes?: string,
): Error {
  if (!(e instanceof Error)) throw new AssertionError("A non-Error object was thrown.");
  if (ErrorClass && !(e instanceof ErrorClass)) {
    throw new AssertionError(
      `Expected error to be instance of "${ErrorClass.name}", but was "${
        (e as Error).constructor.name
      }".`,
    );
  }
  if (msgIncludes !== undefined && !e.message.includes(msgIncludes)) {
    throw new AssertionError(
      `Expected error message to include "${msgIncludes}", but got "${e.message}".`,
    );
  }
  return e;
}

/**
 * Asserts that `fn` throws; optionally that the error is an instance of `ErrorClass` and
 * that its message includes `msgIncludes`. Returns the error.
 */
export function assertThrows(
  fn: () => unknown,
  ErrorClass?: abstract new (...args: never[]) => Error,
  msgIncludes?: string,
  msg?: string,
): Error {
  try {
    fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes);
  }
  throw new AssertionError(msg ?? "Expected function to throw.");
}

/** Async form of {@link assertThrows}: asserts that the promise from `fn` rejects. */
export async function assertRejects(
  fn: () => PromiseLike<unknown>,
  ErrorClass?: abstract new (...args: never[]) => Error,
  msgIncludes?: string,
  msg?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes);
  }
  throw new AssertionError(msg ?? "Expected function to reject.");
}

/** Always throws: marks code that must not be reached. */
export function fail(msg?: string): never {
  throw new AssertionError(msg ? `Failed assertion: ${msg}` : "Failed assertion");
}
