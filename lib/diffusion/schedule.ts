/**
 * Discrete noise schedules (the reference's cosine, DDPM linear, Stable-Diffusion scaled-linear,
 * Chen's sigmoid), the zero-terminal-SNR rescale, derived tables (sqrt(abar), SNR, logSNR) and the
 * continuous-time cosine logSNR schedule of progressive distillation.
 *
 * Everything here is float64 on `Float64Array`s; no tfjs. Notation: `abar` = alpha-bar, the
 * signal variance of z_t = sqrt(abar) x0 + sqrt(1 - abar) eps; SNR = abar / (1 - abar).
 * @module
 */
import {
  checkFinite,
  checkInRange,
  checkInt,
  checkNonNegative,
  checkPositive,
  checkPositiveInt,
} from "../core/checks.ts";

/** A discrete noise schedule: the table the integer time index `t` points into. */
export interface DiscreteSchedule {
  /** "cosine" | "linear" | "scaled-linear" | "sigmoid" | derived names (see builders). */
  readonly name: string;
  /** Per-step noise variances, length n, each in (0, 1]. Do not mutate. */
  readonly betas: Float64Array;
  /** Length n; `alphasBar[i] = prod_{j<=i} (1 - betas[j])`, decreasing, in [0, 1). Do not mutate. */
  readonly alphasBar: Float64Array;
  /** n - 1: valid integer indices are 0..maxIndex. */
  readonly maxIndex: number;
}

/** Options of {@link cosineSchedule}. */
export interface CosineOptions {
  /** Positive integer; the table gets T * timeScale + 1 entries (reference `time_scale`). Default 1. */
  timeScale?: number;
  /** Offset s of Nichol & Dhariwal (2021), >= 0. Default 0.008. */
  s?: number;
  /** Upper clamp of each beta, in (0, 1]. Default 0.999. */
  maxBeta?: number;
}

/** Options of {@link linearSchedule} and {@link scaledLinearSchedule}. */
export interface LinearOptions {
  /** First beta, in (0, 1). Default 1e-4 (linear) or 0.00085 (scaled-linear). */
  betaStart?: number;
  /** Last beta, in (0, 1). Default 0.02 (linear) or 0.012 (scaled-linear). */
  betaEnd?: number;
}

/** Options of {@link sigmoidSchedule}. */
export interface SigmoidOptions {
  /** Left end of the sigmoid's input range; must be < end. Default -3. */
  start?: number;
  /** Right end of the sigmoid's input range. Default 3. */
  end?: number;
  /** Temperature, > 0. Default 1. */
  tau?: number;
  /** Upper clamp of each beta, in (0, 1]. Default 0.999. */
  maxBeta?: number;
}

/** Union of all builder options, for {@link makeSchedule}. */
export type ScheduleOptions = CosineOptions & LinearOptions & SigmoidOptions;

/** Names accepted by {@link makeSchedule}. */
export type ScheduleName = "cosine" | "linear" | "scaled-linear" | "sigmoid";

/**
 * `n` evenly spaced numbers from `start` to `stop` inclusive, computed as `start + i * step`
 * with the last entry set to exactly `stop` (numpy's `linspace` semantics). n = 1 gives [start].
 */
export function linspace(start: number, stop: number, n: number): Float64Array {
  checkPositiveInt("n", n);
  checkFinite("start", start);
  checkFinite("stop", stop);
  const out = new Float64Array(n);
  const step = n > 1 ? (stop - start) / (n - 1) : 0;
  for (let i = 0; i < n; i++) out[i] = start + i * step;
  if (n > 1) out[n - 1] = stop;
  return out;
}

/**
 * Builds a schedule from its betas: `alphasBar = cumprod(1 - betas)`.
 * @param name the schedule's name.
 * @param betas length n >= 1, each in (0, 1] (copied).
 */
export function scheduleFromBetas(name: string, betas: ArrayLike<number>): DiscreteSchedule {
  if (betas.length < 1) throw new RangeError(`betas must have length >= 1, got 0`);
  const b = Float64Array.from(betas);
  const alphasBar = new Float64Array(b.length);
  let acc = 1;
  for (let i = 0; i < b.length; i++) {
    checkInRange(`betas[${i}]`, b[i], 0, 1, { loOpen: true });
    acc *= 1 - b[i];
    alphasBar[i] = acc;
  }
  return { name, betas: b, alphasBar, maxIndex: b.length - 1 };
}

/**
 * Betas of a continuous alpha-bar function `abarFn` on u in [0, 1] with abarFn(0) > 0 (the
 * construction of Nichol & Dhariwal, 2021): for i = 1..n,
 * `beta_i = min(1 - abarFn(i/n) / abarFn((i-1)/n), maxBeta)`. Returns the n betas in order.
 */
export function betasFromAlphaBarFn(
  n: number,
  abarFn: (u: number) => number,
  maxBeta = 0.999,
): Float64Array {
  checkPositiveInt("n", n);
  checkInRange("maxBeta", maxBeta, 0, 1, { loOpen: true });
  const betas = new Float64Array(n);
  for (let i = 1; i <= n; i++) {
    betas[i - 1] = Math.min(1 - abarFn(i / n) / abarFn((i - 1) / n), maxBeta);
  }
  return betas;
}

/**
 * The reference's cosine schedule (Nichol & Dhariwal, 2021), exactly as the reference builds it:
 * with N = T * timeScale + 1 betas, f(i) = cos^2(((i/N) + s) / (1 + s) * pi/2) for i = 0..N,
 * beta_i = min(1 - f(i)/f(i-1), maxBeta) for i = 1..N, alphasBar = cumprod(1 - beta).
 * The table has indices 0..T*timeScale; alphasBar[0] < 1 (index 0 is already slightly noisy)
 * and the last beta is clamped to maxBeta, so the last alphasBar is small but not 0.
 * @param T number of diffusion steps of the model (positive integer).
 */
export function cosineSchedule(T: number, options: CosineOptions = {}): DiscreteSchedule {
  const { timeScale = 1, s = 0.008, maxBeta = 0.999 } = options;
  checkPositiveInt("T", T);
  checkPositiveInt("timeScale", timeScale);
  checkNonNegative("s", s);
  const f = (u: number) => Math.cos((u + s) / (1 + s) * Math.PI / 2) ** 2;
  return scheduleFromBetas("cosine", betasFromAlphaBarFn(T * timeScale + 1, f, maxBeta));
}

function checkBetaPair(betaStart: number, betaEnd: number): void {
  checkInRange("betaStart", betaStart, 0, 1, { loOpen: true, hiOpen: true });
  checkInRange("betaEnd", betaEnd, 0, 1, { loOpen: true, hiOpen: true });
}

/**
 * DDPM's linear schedule (Ho et al., 2020): T betas `linspace(betaStart, betaEnd, T)`,
 * indices 0..T-1.
 */
export function linearSchedule(T: number, options: LinearOptions = {}): DiscreteSchedule {
  const { betaStart = 1e-4, betaEnd = 0.02 } = options;
  checkPositiveInt("T", T);
  checkBetaPair(betaStart, betaEnd);
  return scheduleFromBetas("linear", linspace(betaStart, betaEnd, T));
}

/**
 * Stable Diffusion's "scaled linear" schedule: T betas
 * `linspace(sqrt(betaStart), sqrt(betaEnd), T) ** 2`, indices 0..T-1.
 */
export function scaledLinearSchedule(T: number, options: LinearOptions = {}): DiscreteSchedule {
  const { betaStart = 0.00085, betaEnd = 0.012 } = options;
  checkPositiveInt("T", T);
  checkBetaPair(betaStart, betaEnd);
  const r = linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), T).map((x) => x * x);
  return scheduleFromBetas("scaled-linear", r);
}

/**
 * Sigmoid schedule of T. Chen, "On the Importance of Noise Scheduling for Diffusion Models"
 * (arXiv 2301.10972, 2023; also used by Jabri et al., 2023), defined on alpha-bar in continuous
 * time u in [0, 1]:
 *   gamma(u) = (sigmoid(end/tau) - sigmoid((start + u (end - start)) / tau))
 *              / (sigmoid(end/tau) - sigmoid(start/tau)),
 * so gamma(0) = 1 and gamma(1) = 0. It is discretised like the cosine schedule (T betas,
 * beta_i = min(1 - gamma(i/T) / gamma((i-1)/T), maxBeta), i = 1..T), indices 0..T-1; the last
 * beta is clamped to maxBeta.
 */
export function sigmoidSchedule(T: number, options: SigmoidOptions = {}): DiscreteSchedule {
  const { start = -3, end = 3, tau = 1, maxBeta = 0.999 } = options;
  checkPositiveInt("T", T);
  checkFinite("start", start);
  checkFinite("end", end);
  if (!(start < end)) throw new RangeError(`start must be < end, got start=${start}, end=${end}`);
  checkPositive("tau", tau);
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const vStart = sig(start / tau), vEnd = sig(end / tau);
  const gamma = (u: number) => (vEnd - sig((start + u * (end - start)) / tau)) / (vEnd - vStart);
  return scheduleFromBetas("sigmoid", betasFromAlphaBarFn(T, gamma, maxBeta));
}

const BUILDERS: Record<
  ScheduleName,
  { keys: readonly string[]; build: (T: number, o: ScheduleOptions) => DiscreteSchedule }
> = {
  "cosine": { keys: ["timeScale", "s", "maxBeta"], build: cosineSchedule },
  "linear": { keys: ["betaStart", "betaEnd"], build: linearSchedule },
  "scaled-linear": { keys: ["betaStart", "betaEnd"], build: scaledLinearSchedule },
  "sigmoid": { keys: ["start", "end", "tau", "maxBeta"], build: sigmoidSchedule },
};

/** The names {@link makeSchedule} accepts. */
export const SCHEDULE_NAMES: readonly ScheduleName[] = Object.keys(BUILDERS) as ScheduleName[];

/**
 * Builds the schedule called `name` with T steps. Options that do not apply to that schedule
 * (e.g. `timeScale` for "linear") are rejected rather than ignored.
 * @throws RangeError naming `name` for an unknown name, naming the option for a foreign option.
 */
export function makeSchedule(
  name: string,
  T: number,
  options: ScheduleOptions = {},
): DiscreteSchedule {
  if (!Object.hasOwn(BUILDERS, name)) {
    throw new RangeError(
      `name must be one of ${SCHEDULE_NAMES.map((n) => `"${n}"`).join(", ")}, got "${name}"`,
    );
  }
  const { keys, build } = BUILDERS[name as ScheduleName];
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && !keys.includes(k)) {
      throw new RangeError(
        `option ${k} does not apply to schedule "${name}" (its options: ${keys.join(", ")})`,
      );
    }
  }
  return build(T, options);
}

/**
 * Zero-terminal-SNR rescale (Lin et al., "Common Diffusion Noise Schedules and Sample Steps are
 * Flawed", WACV 2024): shifts and scales sqrt(alphasBar) linearly so that the last entry becomes
 * exactly 0 and the first is unchanged, then recomputes the betas (the last beta becomes 1).
 * Name: `${schedule.name}+zero-terminal-snr`. Needs maxIndex >= 1 and alphasBar[0] > alphasBar[last].
 */
export function rescaleZeroTerminalSnr(schedule: DiscreteSchedule): DiscreteSchedule {
  const ab = schedule.alphasBar;
  const n = ab.length;
  if (n < 2) throw new RangeError(`schedule must have maxIndex >= 1, got ${schedule.maxIndex}`);
  const first = Math.sqrt(ab[0]), last = Math.sqrt(ab[n - 1]);
  if (!(first > last)) {
    throw new RangeError(
      `schedule.alphasBar must decrease from first to last, got ${ab[0]} .. ${ab[n - 1]}`,
    );
  }
  const alphasBar = new Float64Array(n);
  const betas = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = first * ((Math.sqrt(ab[i]) - last) / (first - last));
    alphasBar[i] = r * r;
    betas[i] = 1 - (i === 0 ? alphasBar[0] : alphasBar[i] / alphasBar[i - 1]);
  }
  return {
    name: `${schedule.name}+zero-terminal-snr`,
    betas,
    alphasBar,
    maxIndex: n - 1,
  };
}

/**
 * alpha-bar at integer index t of `schedule`; t = -1 means clean data (returns 1), the
 * convention samplers use to "land on clean data".
 * @param t integer in -1..schedule.maxIndex.
 */
export function alphaBarAt(schedule: DiscreteSchedule, t: number): number {
  checkTimeIndex(t, schedule.maxIndex, "t");
  return t === -1 ? 1 : schedule.alphasBar[t];
}

/**
 * Throws unless `t` is an integer in -1..maxIndex; the message names `name`.
 * (Exported so the time-index checks of every module read the same.)
 */
export function checkTimeIndex(t: number, maxIndex: number, name: string): void {
  checkInt(name, t, -1, maxIndex);
}

/** Table of sqrt(alphasBar[i]), length maxIndex + 1. */
export function sqrtAlphasBar(schedule: DiscreteSchedule): Float64Array {
  return schedule.alphasBar.map(Math.sqrt);
}

/** Table of sqrt(1 - alphasBar[i]), length maxIndex + 1. */
export function sqrtOneMinusAlphasBar(schedule: DiscreteSchedule): Float64Array {
  return schedule.alphasBar.map((a) => Math.sqrt(1 - a));
}

/** Table of SNR[i] = alphasBar[i] / (1 - alphasBar[i]) (0 where alphasBar is 0). */
export function snr(schedule: DiscreteSchedule): Float64Array {
  return schedule.alphasBar.map((a) => a / (1 - a));
}

/** Table of logSNR[i] = log(alphasBar[i]) - log(1 - alphasBar[i]) (-Infinity where alphasBar is 0). */
export function logSnr(schedule: DiscreteSchedule): Float64Array {
  return schedule.alphasBar.map(logSnrFromAlphaBar);
}

/** Options of {@link cosineLogSnr}. */
export interface CosineLogSnrOptions {
  /** logSNR at u = 1 (most noise). Default -20. */
  logSnrMin?: number;
  /** logSNR at u = 0 (least noise), > logSnrMin. Default 20. */
  logSnrMax?: number;
}

/**
 * Continuous-time cosine schedule of progressive distillation (Salimans & Ho, 2022), in logSNR:
 * logSNR(u) = -2 log(tan(a u + b)) with b = atan(exp(-logSnrMax / 2)) and
 * a = atan(exp(-logSnrMin / 2)) - b, so logSNR(0) = logSnrMax and logSNR(1) = logSnrMin exactly
 * (the unclipped schedule, logSNR = -2 log tan(pi u / 2), runs from +inf to -inf).
 * @param u time in [0, 1].
 */
export function cosineLogSnr(u: number, options: CosineLogSnrOptions = {}): number {
  const { logSnrMin = -20, logSnrMax = 20 } = options;
  checkInRange("u", u, 0, 1);
  checkFinite("logSnrMin", logSnrMin);
  checkFinite("logSnrMax", logSnrMax);
  if (!(logSnrMin < logSnrMax)) {
    throw new RangeError(`logSnrMin must be < logSnrMax, got ${logSnrMin}, ${logSnrMax}`);
  }
  const b = Math.atan(Math.exp(-logSnrMax / 2));
  const a = Math.atan(Math.exp(-logSnrMin / 2)) - b;
  return -2 * Math.log(Math.tan(a * u + b));
}

function checkLogSnr(logSnr: number): void {
  if (typeof logSnr !== "number" || Number.isNaN(logSnr)) {
    throw new RangeError(`logSnr must be a number in [-inf, inf], got ${logSnr}`);
  }
}

/**
 * Signal and noise scales of a variance-preserving process at a given logSNR:
 * alpha^2 = sigmoid(logSnr), sigma^2 = sigmoid(-logSnr), alpha^2 + sigma^2 = 1.
 * @param logSnr log(alpha^2 / sigma^2), may be +-Infinity.
 */
export function alphaSigmaFromLogSnr(logSnr: number): { alpha: number; sigma: number } {
  return {
    alpha: Math.sqrt(alphaBarFromLogSnr(logSnr)),
    sigma: Math.sqrt(alphaBarFromLogSnr(-logSnr)),
  };
}

/** logSNR = log(abar) - log(1 - abar) for abar in [0, 1] (+-Infinity at the ends). */
export function logSnrFromAlphaBar(abar: number): number {
  checkInRange("abar", abar, 0, 1);
  return Math.log(abar) - Math.log1p(-abar);
}

/** Inverse of {@link logSnrFromAlphaBar}: abar = sigmoid(logSnr) = 1 / (1 + exp(-logSnr)). */
export function alphaBarFromLogSnr(logSnr: number): number {
  checkLogSnr(logSnr);
  return 1 / (1 + Math.exp(-logSnr));
}
