import { assertEquals, assertThrows } from "@std/assert";
import {
  checkPath,
  logSnrTimesteps,
  spacedTimesteps,
  strideTimesteps,
} from "../lib/diffusion/timesteps.ts";
import { cosineSchedule, logSnr } from "../lib/diffusion/schedule.ts";

Deno.test("strideTimesteps: the reference's DDIM loop", () => {
  assertEquals(strideTimesteps(8, 2), [8, 6, 4, 2, 0]);
  assertEquals(strideTimesteps(10, 3), [9, 6, 3, 0]);
  assertEquals(strideTimesteps(8, 8), [8, 0]);
  assertEquals(strideTimesteps(5, 1), [5, 4, 3, 2, 1, 0]);
  // A K-step student of T = 1024 runs K network evaluations.
  assertEquals(strideTimesteps(1024, 256).length - 1, 4);
});

Deno.test("strideTimesteps rejects bad T and stride, naming them", () => {
  assertThrows(() => strideTimesteps(8, 2.5), RangeError, "stride");
  assertThrows(() => strideTimesteps(8, 0), RangeError, "stride");
  assertThrows(() => strideTimesteps(8, 9), RangeError, "stride must be an integer in 1..8, got 9");
  assertThrows(() => strideTimesteps(0, 1), RangeError, "T");
  assertThrows(() => strideTimesteps(7.5, 1), RangeError, "T");
});

Deno.test("spacedTimesteps: hand-checked leading / trailing / linspace", () => {
  // N = 10, n = 4: leading ratio floor(10/4) = 2; trailing 10, 7.5, 5, 2.5 -> round-half-even
  // 10, 8, 5, 2 -> minus 1; linspace(0, 9, 4) = 0, 3, 6, 9.
  assertEquals(spacedTimesteps(10, 4, "leading"), [6, 4, 2, 0, -1]);
  assertEquals(spacedTimesteps(10, 4, "trailing"), [9, 7, 4, 1, -1]);
  assertEquals(spacedTimesteps(10, 4, "linspace"), [9, 6, 3, 0, -1]);
  assertEquals(spacedTimesteps(10, 4, "leading", { stepsOffset: 1 }), [7, 5, 3, 1, -1]);
  // N = 12, n = 8: trailing 12, 10.5, 9, 7.5, 6, 4.5, 3, 1.5 (halves round to even);
  // linspace step 11/7: 0, 1.57, 3.14, 4.71, 6.29, 7.86, 9.43, 11.
  assertEquals(spacedTimesteps(12, 8, "trailing"), [11, 9, 8, 7, 5, 3, 2, 1, -1]);
  assertEquals(spacedTimesteps(12, 8, "linspace"), [11, 9, 8, 6, 5, 3, 2, 0, -1]);
  // Values of the diffusers schedulers for 1000 training steps, 7 steps.
  assertEquals(spacedTimesteps(1000, 7, "leading"), [852, 710, 568, 426, 284, 142, 0, -1]);
  assertEquals(spacedTimesteps(1000, 7, "trailing"), [999, 856, 713, 570, 428, 285, 142, -1]);
  assertEquals(spacedTimesteps(1000, 7, "linspace"), [999, 832, 666, 500, 333, 166, 0, -1]);
  // All steps: every index.
  assertEquals(spacedTimesteps(3, 3, "trailing"), [2, 1, 0, -1]);
  assertEquals(spacedTimesteps(3, 1, "linspace"), [0, -1]);
});

Deno.test("spacedTimesteps paths are valid for the schedule", () => {
  for (const spacing of ["leading", "trailing", "linspace"] as const) {
    for (const n of [1, 2, 3, 7, 50, 999, 1000]) checkPath(spacedTimesteps(1000, n, spacing), 999);
  }
});

Deno.test("spacedTimesteps rejects bad inputs, naming the parameter", () => {
  assertThrows(() => spacedTimesteps(10, 11, "leading"), RangeError, "numSteps");
  assertThrows(() => spacedTimesteps(10, 0, "leading"), RangeError, "numSteps");
  assertThrows(() => spacedTimesteps(10, 2.5, "leading"), RangeError, "numSteps");
  assertThrows(() => spacedTimesteps(10.5, 2, "leading"), RangeError, "numTrainSteps");
  assertThrows(
    // @ts-expect-error: an unknown spacing is a type error and a run-time error.
    () => spacedTimesteps(10, 2, "middle"),
    RangeError,
    "spacing",
  );
  assertThrows(
    () => spacedTimesteps(10, 2, "leading", { stepsOffset: -1 }),
    RangeError,
    "stepsOffset",
  );
  assertThrows(
    () => spacedTimesteps(10, 10, "leading", { stepsOffset: 1 }),
    RangeError,
    "stepsOffset",
  );
  assertThrows(
    () => spacedTimesteps(10, 2, "trailing", { stepsOffset: 1 }),
    RangeError,
    "stepsOffset",
  );
});

Deno.test("checkPath accepts descending paths and names the bad element", () => {
  checkPath([8, 6, 4, 2, 0], 8);
  checkPath([3, -1], 8);
  assertThrows(() => checkPath([8], 8), RangeError, "path");
  assertThrows(() => checkPath([9, 0], 8), RangeError, "path[0]");
  assertThrows(() => checkPath([8, 8, 0], 8), RangeError, "strictly descending");
  assertThrows(() => checkPath([8, -2], 8), RangeError, "path[1]");
});

Deno.test("logSnrTimesteps: maxIndex to 0, each point the nearest-logSNR index of its target", () => {
  const s = cosineSchedule(128);
  const lam = logSnr(s);
  const nearest = (x: number) =>
    Array.from(lam.keys()).reduce((b, j) => Math.abs(lam[j] - x) < Math.abs(lam[b] - x) ? j : b);
  for (const k of [1, 2, 4, 8, 16]) {
    const p = logSnrTimesteps(s, k);
    assertEquals(p.length, k + 1);
    assertEquals([p[0], p[k]], [128, 0]);
    checkPath(p, 128);
    for (let i = 1; i < k; i++) {
      const want = nearest(lam[128] + (i / k) * (lam[0] - lam[128]));
      // Either the nearest index, or pushed by one to keep the path strictly descending
      // (the reference cosine's top logSNR step is large: targets crowd below index 128).
      const pushed = p[i] === p[i - 1] - 1 || p[i] === p[i + 1] + 1;
      assertEquals(p[i] === want || pushed, true, `k=${k} point ${i}: ${p[i]} vs ${want}`);
    }
  }
  // Hand-checked on the T = 128 table: logSNR(128) = -15.74, logSNR(0) = 7.71, midpoint -4.02.
  assertEquals(logSnrTimesteps(s, 2), [128, 117, 0]);
  // One step per index when numSteps = maxIndex.
  assertEquals(logSnrTimesteps(cosineSchedule(4), 4), [4, 3, 2, 1, 0]);
  assertThrows(() => logSnrTimesteps(s, 0), RangeError, "numSteps");
  assertThrows(
    () => logSnrTimesteps(s, 129),
    RangeError,
    "numSteps must be an integer in 1..128, got 129",
  );
});
