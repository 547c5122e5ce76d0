/**
 * Argument checks shared by every module: numbers (integers, ranges, positivity), choices,
 * required inputs, and the rank and shape of anything with a `shape` (tfjs tensors and
 * `Batch`es alike). One error style throughout: the parameter's name, what was expected,
 * and the value received, e.g. `stride must be an integer >= 1, got 0` or
 * `fTeacher must have shape [B, C], got [4,3,2]`. Values out of range and wrong shapes throw
 * `RangeError`; a missing input or a value of the wrong kind throws `TypeError`
 * (docs/architecture.md).
 *
 * No tfjs import: the shape checks read `.shape` only, so the float64 modules stay tfjs-free.
 * @module
 */

/** Anything with a shape: a `tf.Tensor`, a `Batch` (ndarray view), ... */
export interface Shaped {
  /** Sizes of the axes, outermost first. */
  readonly shape: readonly number[];
}

/** A value as it appears in messages (strings quoted, arrays bracketed). */
function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value}]`;
  return String(value);
}

/**
 * Throws a RangeError unless `value` is an integer in `min..max` (inclusive).
 * @param name the parameter's name, as the caller spells it (e.g. `options.chunkSize`).
 * @param value the value received.
 * @param min smallest allowed value (default 1).
 * @param max largest allowed value (default: no upper bound).
 */
export function checkInt(name: string, value: number, min = 1, max = Infinity): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const want = max === Infinity ? `>= ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${name} must be an integer ${want}, got ${show(value)}`);
  }
}

/** Throws a RangeError unless `value` is an integer >= 1. @param name the parameter's name. */
export function checkPositiveInt(name: string, value: number): void {
  checkInt(name, value, 1);
}

/** Throws a RangeError unless `value` is a finite number. @param name the parameter's name. */
export function checkFinite(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a finite number, got ${show(value)}`);
  }
}

/** Throws a RangeError unless `value` is a finite number > 0. @param name the parameter's name. */
export function checkPositive(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${show(value)}`);
  }
}

/** Throws a RangeError unless `value` is a finite number >= 0. @param name the parameter's name. */
export function checkNonNegative(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${show(value)}`);
  }
}

/** Which ends of a {@link checkInRange} interval are excluded. */
export interface IntervalEnds {
  /** Exclude `lo` (default false: `[lo, ...`). */
  readonly loOpen?: boolean;
  /** Exclude `hi` (default false: `..., hi]`). */
  readonly hiOpen?: boolean;
}

/**
 * Throws a RangeError unless `value` is a number in the interval from `lo` to `hi` (closed
 * unless `ends` says otherwise); NaN is never in range.
 * @param name the parameter's name.
 * @param value the value received.
 * @param lo lower end. @param hi upper end.
 * @param ends which ends are open.
 */
export function checkInRange(
  name: string,
  value: number,
  lo: number,
  hi: number,
  ends: IntervalEnds = {},
): void {
  const okLo = ends.loOpen ? value > lo : value >= lo;
  const okHi = ends.hiOpen ? value < hi : value <= hi;
  if (typeof value !== "number" || !okLo || !okHi) {
    const interval = `${ends.loOpen ? "(" : "["}${lo}, ${hi}${ends.hiOpen ? ")" : "]"}`;
    throw new RangeError(`${name} must be in ${interval}, got ${show(value)}`);
  }
}

/**
 * Throws a RangeError unless `value` is one of `allowed`; narrows its type.
 * @param name the parameter's name.
 * @param value the value received.
 * @param allowed the accepted values, listed in the message.
 */
export function checkOneOf<T extends string | number>(
  name: string,
  value: unknown,
  allowed: readonly T[],
): asserts value is T {
  if (!allowed.includes(value as T)) {
    const list = allowed.map(show);
    const want = list.length === 1
      ? list[0]
      : `${list.slice(0, -1).join(", ")} or ${list[list.length - 1]}`;
    throw new RangeError(`${name} must be ${want}, got ${show(value)}`);
  }
}

/**
 * Returns `value`, or throws a TypeError naming it when it is null or undefined.
 * @param name the parameter's name.
 * @param value the value received.
 * @param when the condition under which it is required (e.g. `config.mp2pWeight > 0`).
 */
export function required<T>(name: string, value: T | null | undefined, when: string): T {
  if (value == null) throw new TypeError(`${name} is required when ${when}`);
  return value;
}

function isShaped(x: unknown): x is Shaped {
  return typeof x === "object" && x !== null && Array.isArray((x as Shaped).shape);
}

/**
 * Throws unless `x` has one axis per entry of `dims`, each of size >= 1, and the size given
 * for each numeric entry. A string entry names a free axis (it only appears in the message).
 * TypeError when `x` has no shape (not a tensor or Batch), RangeError for a wrong shape.
 * @param name the parameter's name.
 * @param x a tensor or Batch.
 * @param dims expected axes, e.g. `["B", "h", "w", "C"]` or `["K", 16]`.
 */
export function checkShape(name: string, x: unknown, dims: readonly (string | number)[]): void {
  const layout = `[${dims.join(", ")}]`;
  if (!isShaped(x)) {
    throw new TypeError(`${name} must be a tensor or Batch of shape ${layout}, got ${show(x)}`);
  }
  const s = x.shape;
  const ok = s.length === dims.length &&
    s.every((d, i) => d >= 1 && (typeof dims[i] !== "number" || d === dims[i]));
  if (!ok) throw new RangeError(`${name} must have shape ${layout}, got [${s}]`);
}

/**
 * Throws a RangeError unless `b` has exactly the shape of `a` (TypeError if either has no
 * shape). Works across tensors and Batches.
 * @param nameA name of the reference argument. @param a the reference.
 * @param nameB name of the argument checked against it. @param b the argument checked.
 */
export function checkSameShape(nameA: string, a: Shaped, nameB: string, b: Shaped): void {
  if (!isShaped(a)) throw new TypeError(`${nameA} must be a tensor or Batch, got ${show(a)}`);
  if (!isShaped(b)) throw new TypeError(`${nameB} must be a tensor or Batch, got ${show(b)}`);
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new RangeError(`${nameB} must have the shape of ${nameA} [${a.shape}], got [${b.shape}]`);
  }
}

/**
 * {@link checkShape} of `a` against `dims`, then {@link checkSameShape} of `b` against `a`
 * (a student / teacher pair of feature tensors, say).
 * @param nameA name of the first argument. @param a the first argument.
 * @param nameB name of the second argument. @param b the second argument.
 * @param dims expected axes of both, as in {@link checkShape}.
 */
export function checkShapePair(
  nameA: string,
  a: unknown,
  nameB: string,
  b: Shaped,
  dims: readonly (string | number)[],
): void {
  checkShape(nameA, a, dims);
  checkSameShape(nameA, a as Shaped, nameB, b);
}

/**
 * Throws a RangeError unless `length` equals `expected` (e.g. a per-sample array against B).
 * @param name the parameter's name. @param length its length. @param expected the length wanted,
 * @param what how the expected length is called in the message (e.g. `B`).
 */
export function checkLength(name: string, length: number, expected: number, what = ""): void {
  if (length !== expected) {
    const want = what ? `${what} = ${expected}` : `${expected}`;
    throw new RangeError(`${name} must have length ${want}, got ${show(length)}`);
  }
}
