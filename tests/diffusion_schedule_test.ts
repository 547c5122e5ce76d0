import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  alphaBarAt,
  alphaBarFromLogSnr,
  alphaSigmaFromLogSnr,
  cosineLogSnr,
  cosineSchedule,
  linearSchedule,
  linspace,
  logSnr,
  logSnrFromAlphaBar,
  makeSchedule,
  rescaleZeroTerminalSnr,
  scaledLinearSchedule,
  SCHEDULE_NAMES,
  scheduleFromBetas,
  sigmoidSchedule,
  snr,
  sqrtAlphasBar,
  sqrtOneMinusAlphasBar,
} from "../lib/diffusion/schedule.ts";

/** Straight re-computation of the reference cosine table (method.md section 1). */
function referenceCosine(T: number, timeScale: number): number[] {
  const N = T * timeScale + 1;
  const f = (i: number) => Math.cos(((i / N) + 0.008) / 1.008 * Math.PI / 2) ** 2;
  const out: number[] = [];
  let prod = 1;
  for (let i = 1; i <= N; i++) {
    const beta = Math.min(1 - (f(i) / f(0)) / (f(i - 1) / f(0)), 0.999);
    prod *= 1 - beta;
    out.push(prod);
  }
  return out;
}

Deno.test("cosine schedule matches the reference formula to 1e-12", () => {
  for (const T of [8, 1024]) {
    for (const timeScale of [1, 2]) {
      const sch = cosineSchedule(T, { timeScale });
      const ref = referenceCosine(T, timeScale);
      assertEquals(sch.maxIndex, T * timeScale);
      assertEquals(sch.alphasBar.length, T * timeScale + 1);
      assertEquals(sch.betas.length, T * timeScale + 1);
      assertEquals(sch.name, "cosine");
      for (let i = 0; i < ref.length; i++) {
        assertAlmostEquals(sch.alphasBar[i], ref[i], 1e-12, `T=${T} ts=${timeScale} i=${i}`);
      }
      assert(sch.alphasBar[0] < 1, "index 0 is already slightly noisy");
      for (let i = 1; i < ref.length; i++) assert(sch.alphasBar[i] < sch.alphasBar[i - 1]);
    }
  }
});

Deno.test("cosine schedule clamps the last beta to maxBeta", () => {
  const sch = cosineSchedule(8);
  // f(N) = cos^2(pi/2) ~ 0, so the unclamped last beta is ~1.
  assertEquals(sch.betas[sch.maxIndex], 0.999);
  assert(sch.betas[sch.maxIndex - 1] < 0.999);
  assertAlmostEquals(sch.alphasBar[sch.maxIndex], sch.alphasBar[sch.maxIndex - 1] * 0.001, 1e-18);
  const loose = cosineSchedule(8, { maxBeta: 0.5 });
  assert(loose.betas.every((b) => b <= 0.5));
  assertEquals(loose.betas[loose.maxIndex], 0.5);
});

Deno.test("cosine of a student (timeScale 2) is the table its teacher indexes at 2t", () => {
  // Same N = 2T + 1 as a teacher with 2T steps.
  const student = cosineSchedule(4, { timeScale: 2 });
  const teacher = cosineSchedule(8);
  assertEquals(Array.from(student.alphasBar), Array.from(teacher.alphasBar));
});

Deno.test("linear schedule: DDPM values", () => {
  const sch = linearSchedule(1000);
  assertEquals(sch.maxIndex, 999);
  assertAlmostEquals(sch.betas[0], 1e-4, 1e-18);
  assertAlmostEquals(sch.betas[999], 0.02, 1e-18);
  assertAlmostEquals(sch.betas[1] - sch.betas[0], (0.02 - 1e-4) / 999, 1e-15);
  let prod = 1;
  for (let i = 0; i < 1000; i++) prod *= 1 - (1e-4 + i * (0.02 - 1e-4) / 999);
  assertAlmostEquals(sch.alphasBar[999], prod, 1e-15);
  // Known value of DDPM's final alpha-bar: about 4.04e-5.
  assertAlmostEquals(sch.alphasBar[999], 4.04e-5, 0.01e-5);
});

Deno.test("scaled-linear schedule squares a linspace of square roots", () => {
  const sch = scaledLinearSchedule(5);
  const r0 = Math.sqrt(0.00085), r1 = Math.sqrt(0.012);
  for (let i = 0; i < 5; i++) {
    assertAlmostEquals(sch.betas[i], (r0 + i * (r1 - r0) / 4) ** 2, 1e-16);
  }
  assertAlmostEquals(sch.betas[4], 0.012, 1e-16);
});

Deno.test("sigmoid schedule follows Chen's gamma(u)", () => {
  const T = 10;
  const sch = sigmoidSchedule(T);
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const gamma = (u: number) => (sig(3) - sig(-3 + 6 * u)) / (sig(3) - sig(-3));
  // All but the last (clamped) entry equal gamma((i+1)/T).
  for (let i = 0; i < T - 1; i++) assertAlmostEquals(sch.alphasBar[i], gamma((i + 1) / T), 1e-14);
  assertEquals(sch.betas[T - 1], 0.999);
  assertEquals(sch.maxIndex, T - 1);
});

Deno.test("makeSchedule dispatches and rejects unknown names and foreign options", () => {
  for (const name of SCHEDULE_NAMES) assertEquals(makeSchedule(name, 16).name, name);
  assertEquals(
    Array.from(makeSchedule("cosine", 4, { timeScale: 2 }).alphasBar),
    Array.from(cosineSchedule(4, { timeScale: 2 }).alphasBar),
  );
  const e = assertThrows(() => makeSchedule("cosin", 10), RangeError, "name");
  assert(e.message.includes('"cosin"') && e.message.includes('"scaled-linear"'));
  assertThrows(() => makeSchedule("linear", 10, { timeScale: 2 }), RangeError, "timeScale");
});

Deno.test("builders validate T, timeScale and their options", () => {
  assertThrows(() => cosineSchedule(0), RangeError, "T");
  assertThrows(() => cosineSchedule(2.5), RangeError, "T");
  assertThrows(() => cosineSchedule(8, { timeScale: 1.5 }), RangeError, "timeScale");
  assertThrows(() => cosineSchedule(8, { maxBeta: 0 }), RangeError, "maxBeta");
  assertThrows(() => linearSchedule(8, { betaEnd: 1 }), RangeError, "betaEnd");
  assertThrows(() => linearSchedule(8, { betaStart: NaN }), RangeError, "betaStart");
  assertThrows(() => sigmoidSchedule(8, { start: 3, end: 3 }), RangeError, "start");
  assertThrows(() => sigmoidSchedule(8, { tau: 0 }), RangeError, "tau");
  assertThrows(() => scheduleFromBetas("x", [0.1, 1.5]), RangeError, "betas[1]");
});

Deno.test("zero-terminal-SNR rescale: last is 0, first unchanged, betas consistent", () => {
  for (const base of [linearSchedule(1000), cosineSchedule(16)]) {
    const z = rescaleZeroTerminalSnr(base);
    assertEquals(z.alphasBar[z.maxIndex], 0);
    assertEquals(z.betas[z.maxIndex], 1);
    assertAlmostEquals(z.alphasBar[0], base.alphasBar[0], 1e-15);
    assertEquals(z.maxIndex, base.maxIndex);
    // sqrt(abar) is an affine map of the original sqrt(abar).
    const s0 = Math.sqrt(base.alphasBar[0]), sN = Math.sqrt(base.alphasBar[base.maxIndex]);
    const i = Math.floor(base.maxIndex / 2);
    assertAlmostEquals(
      Math.sqrt(z.alphasBar[i]),
      s0 * (Math.sqrt(base.alphasBar[i]) - sN) / (s0 - sN),
      1e-15,
    );
    let prod = 1;
    for (let j = 0; j <= i; j++) prod *= 1 - z.betas[j];
    assertAlmostEquals(z.alphasBar[i], prod, 1e-12);
    assertEquals(z.name, `${base.name}+zero-terminal-snr`);
  }
  assertThrows(() => rescaleZeroTerminalSnr(linearSchedule(1)), RangeError, "maxIndex");
});

Deno.test("alphaBarAt: -1 is clean data; t is validated", () => {
  const sch = cosineSchedule(8);
  assertEquals(alphaBarAt(sch, -1), 1);
  assertEquals(alphaBarAt(sch, 3), sch.alphasBar[3]);
  assertEquals(alphaBarAt(sch, 8), sch.alphasBar[8]);
  assertThrows(() => alphaBarAt(sch, 9), RangeError, "t must be an integer in -1..8");
  assertThrows(() => alphaBarAt(sch, -2), RangeError, "t");
  assertThrows(() => alphaBarAt(sch, 1.5), RangeError, "t");
});

Deno.test("derived tables: sqrt, SNR, logSNR", () => {
  const sch = cosineSchedule(8);
  const a = sqrtAlphasBar(sch), s = sqrtOneMinusAlphasBar(sch), r = snr(sch), l = logSnr(sch);
  for (let i = 0; i <= sch.maxIndex; i++) {
    assertAlmostEquals(a[i] * a[i] + s[i] * s[i], 1, 1e-15);
    assertAlmostEquals(r[i], (a[i] / s[i]) ** 2, 1e-12 * r[i]);
    assertAlmostEquals(l[i], Math.log(r[i]), 1e-12);
  }
  const z = rescaleZeroTerminalSnr(sch);
  assertEquals(snr(z)[z.maxIndex], 0);
  assertEquals(logSnr(z)[z.maxIndex], -Infinity);
});

Deno.test("continuous cosine logSNR: endpoints clipped, tan form in between", () => {
  assertAlmostEquals(cosineLogSnr(0), 20, 1e-9);
  assertAlmostEquals(cosineLogSnr(1), -20, 1e-9);
  assertAlmostEquals(cosineLogSnr(0, { logSnrMin: -5, logSnrMax: 7 }), 7, 1e-12);
  assertAlmostEquals(cosineLogSnr(1, { logSnrMin: -5, logSnrMax: 7 }), -5, 1e-12);
  // Symmetric bounds make u = 1/2 the midpoint: tan(pi/4) = 1, logSNR 0.
  assertAlmostEquals(cosineLogSnr(0.5), 0, 1e-12);
  // Near the unclipped schedule -2 log tan(pi u / 2) away from the ends.
  assertAlmostEquals(cosineLogSnr(0.3), -2 * Math.log(Math.tan(Math.PI * 0.3 / 2)), 1e-4);
  assertThrows(() => cosineLogSnr(1.2), RangeError, "u");
  assertThrows(() => cosineLogSnr(0.5, { logSnrMin: 3, logSnrMax: 2 }), RangeError, "logSnrMin");
});

Deno.test("logSNR <-> alpha-bar <-> (alpha, sigma) round trips", () => {
  for (const abar of [1e-6, 0.1, 0.5, 0.9, 0.999999]) {
    const l = logSnrFromAlphaBar(abar);
    assertAlmostEquals(l, Math.log(abar / (1 - abar)), 1e-9);
    assertAlmostEquals(alphaBarFromLogSnr(l), abar, 1e-15);
    const { alpha, sigma } = alphaSigmaFromLogSnr(l);
    assertAlmostEquals(alpha * alpha, abar, 1e-15);
    assertAlmostEquals(alpha * alpha + sigma * sigma, 1, 1e-15);
  }
  assertEquals(logSnrFromAlphaBar(0), -Infinity);
  assertEquals(logSnrFromAlphaBar(1), Infinity);
  assertEquals(alphaSigmaFromLogSnr(-Infinity), { alpha: 0, sigma: 1 });
  assertThrows(() => logSnrFromAlphaBar(1.1), RangeError, "abar");
  assertThrows(() => alphaBarFromLogSnr(NaN), RangeError, "logSnr");
});

Deno.test("linspace has numpy semantics", () => {
  assertEquals(Array.from(linspace(0, 1, 5)), [0, 0.25, 0.5, 0.75, 1]);
  assertEquals(Array.from(linspace(2, 3, 1)), [2]);
  assertThrows(() => linspace(0, 1, 0), RangeError, "n");
});
