/**
 * Timestep "paths" for samplers. A path is a `number[]` of schedule indices, strictly
 * descending; the network is evaluated at every element but the last, and the LAST element is
 * where the sampler lands — a schedule index, or -1 for clean data (alpha-bar = 1).
 * @module
 */
import { checkInt, checkPositiveInt } from "../core/checks.ts";
import { checkTimeIndex, type DiscreteSchedule, linspace, logSnr } from "./schedule.ts";

/**
 * The reference's strided DDIM path: [k*stride, (k-1)*stride, ..., stride, 0] with
 * k = floor(T / stride). A stride that does not divide T is allowed and starts at the largest
 * multiple of stride <= T. It lands on index 0 (the reference then clips to [-1, 1]).
 * E.g. (8, 2) -> [8, 6, 4, 2, 0]; (10, 3) -> [9, 6, 3, 0].
 * @param T the teacher's top index (positive integer; the cosine table's maxIndex / timeScale).
 * @param stride integer in 1..T; a K-step student uses stride = T / K.
 */
export function strideTimesteps(T: number, stride: number): number[] {
  checkPositiveInt("T", T);
  checkInt("stride", stride, 1, T);
  const k = Math.floor(T / stride);
  return Array.from({ length: k + 1 }, (_, i) => (k - i) * stride);
}

/** Spacing rules of {@link spacedTimesteps} (as in the diffusers schedulers). */
export type Spacing = "leading" | "trailing" | "linspace";

/** The spacings {@link spacedTimesteps} accepts. */
export const SPACINGS: readonly Spacing[] = ["leading", "trailing", "linspace"];

/** Round half to even (numpy's `round`), so paths match the diffusers schedulers exactly. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `numSteps` indices of a schedule with `numTrainSteps` entries (indices 0..numTrainSteps-1),
 * descending, with -1 appended (land on clean data). Spacings, with n = numSteps,
 * N = numTrainSteps (the semantics of the diffusers schedulers; rounding is half-to-even):
 * - "leading": `i * floor(N / n) + stepsOffset` for i = n-1..0;
 * - "trailing": `round(N - i * N / n) - 1` for i = 0..n-1;
 * - "linspace": `round(linspace(0, N - 1, n))`, reversed.
 * E.g. (10, 4): leading [6, 4, 2, 0, -1], trailing [9, 7, 4, 1, -1], linspace [9, 6, 3, 0, -1].
 * @param stepsOffset integer >= 0 added to "leading" only (as diffusers does); must be 0 for the
 *   other spacings and keep the top index <= N - 1.
 */
export function spacedTimesteps(
  numTrainSteps: number,
  numSteps: number,
  spacing: Spacing,
  options: { stepsOffset?: number } = {},
): number[] {
  const { stepsOffset = 0 } = options;
  checkPositiveInt("numTrainSteps", numTrainSteps);
  checkInt("numSteps", numSteps, 1, numTrainSteps);
  checkInt("stepsOffset", stepsOffset, 0);
  if (stepsOffset !== 0 && spacing !== "leading") {
    throw new RangeError(`stepsOffset applies to spacing "leading" only, got ${stepsOffset}`);
  }
  const N = numTrainSteps, n = numSteps;
  let path: number[];
  if (spacing === "leading") {
    const ratio = Math.floor(N / n);
    path = Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
  } else if (spacing === "trailing") {
    const ratio = N / n;
    path = Array.from({ length: n }, (_, i) => roundHalfEven(N - i * ratio) - 1);
  } else if (spacing === "linspace") {
    path = Array.from(linspace(0, N - 1, n), roundHalfEven).reverse();
  } else {
    throw new RangeError(
      `spacing must be one of ${SPACINGS.map((s) => `"${s}"`).join(", ")}, got "${spacing}"`,
    );
  }
  if (path[0] > N - 1) {
    throw new RangeError(
      `stepsOffset=${stepsOffset} puts the top index ${path[0]} past numTrainSteps-1=${N - 1}`,
    );
  }
  path.push(-1);
  return path;
}

/**
 * Throws unless `path` is a valid path for a schedule with `maxIndex`: length >= 2, integers in
 * -1..maxIndex, strictly descending. Messages name `path[i]`.
 */
export function checkPath(path: readonly number[], maxIndex: number): void {
  if (!Array.isArray(path) || path.length < 2) {
    throw new RangeError(`path must be an array of length >= 2, got ${JSON.stringify(path)}`);
  }
  path.forEach((t, i) => {
    checkTimeIndex(t, maxIndex, `path[${i}]`);
    if (i > 0 && !(t < path[i - 1])) {
      throw new RangeError(
        `path must be strictly descending, got path[${i - 1}]=${path[i - 1]}, path[${i}]=${t}`,
      );
    }
  });
}

/**
 * A path of `numSteps` network evaluations whose points are as uniform in logSNR as integer
 * indices allow: targets lambda_i = lambda(maxIndex) + (i / numSteps) (lambda(0) - lambda(maxIndex))
 * for i = 0..numSteps, each mapped to the index of nearest logSNR (logSNR is monotone in the
 * index), then pushed down where needed to keep the path strictly descending. It starts at
 * `schedule.maxIndex` and lands on index 0, like {@link strideTimesteps}. On the reference
 * cosine table the strided path takes a large logSNR jump in its last step, which a
 * second-order solver (DPM-Solver++) handles badly; this path spreads the jumps evenly.
 * @param numSteps integer in 1..maxIndex.
 */
export function logSnrTimesteps(schedule: DiscreteSchedule, numSteps: number): number[] {
  const T = schedule.maxIndex;
  checkInt("numSteps", numSteps, 1, T);
  const lam = logSnr(schedule);
  const nearest = (target: number): number => {
    let best = 0;
    for (let j = 1; j <= T; j++) {
      if (Math.abs(lam[j] - target) < Math.abs(lam[best] - target)) best = j;
    }
    return best;
  };
  const path = Array.from(
    { length: numSteps + 1 },
    (_, i) => nearest(lam[T] + (i / numSteps) * (lam[0] - lam[T])),
  );
  path[0] = T;
  path[numSteps] = 0;
  // Strictly descending: from the end, each index must exceed the next one; from the top, each
  // must stay below the previous one. With numSteps <= T both passes succeed.
  for (let i = numSteps - 1; i >= 1; i--) path[i] = Math.max(path[i], path[i + 1] + 1);
  for (let i = 1; i < numSteps; i++) path[i] = Math.min(path[i], T - i);
  return path;
}
