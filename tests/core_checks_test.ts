import { assertEquals, assertThrows } from "@std/assert";
import * as tf from "@tensorflow/tfjs";
import { zeros } from "../lib/core/batch.ts";
import {
  checkFinite,
  checkInRange,
  checkInt,
  checkLength,
  checkNonNegative,
  checkOneOf,
  checkPositive,
  checkPositiveInt,
  checkSameShape,
  checkShape,
  checkShapePair,
  required,
} from "../lib/core/checks.ts";

Deno.test("number checks: name, expectation and received value in the message", () => {
  checkInt("k", 0, 0, 3);
  checkPositiveInt("n", 5);
  assertThrows(() => checkInt("k", 4, 0, 3), RangeError, "k must be an integer in 0..3, got 4");
  assertThrows(() => checkInt("k", 1.5), RangeError, "k must be an integer >= 1, got 1.5");
  assertThrows(() => checkPositiveInt("n", 0), RangeError, "n must be an integer >= 1, got 0");
  assertThrows(() => checkFinite("x", NaN), RangeError, "x must be a finite number, got NaN");
  assertThrows(() => checkPositive("tau", 0), RangeError, "tau must be a finite number > 0, got 0");
  checkNonNegative("w", 0);
  assertThrows(() => checkNonNegative("w", -1), RangeError, "w must be a finite number >= 0");
  checkInRange("a", 1, 0, 1);
  assertThrows(
    () => checkInRange("a", 1, 0, 1, { hiOpen: true }),
    RangeError,
    "a must be in [0, 1)",
  );
  assertThrows(
    () => checkInRange("a", 0, 0, 1, { loOpen: true }),
    RangeError,
    "a must be in (0, 1]",
  );
  assertThrows(() => checkInRange("a", NaN, 0, 1), RangeError, "got NaN");
  assertThrows(() => checkLength("t", 2, 3, "B"), RangeError, "t must have length B = 3, got 2");
});

Deno.test("checkOneOf and required", () => {
  checkOneOf("kind", "x", ["x", "eps"]);
  assertThrows(
    () => checkOneOf("kind", "v", ["x", "eps", "both"]),
    RangeError,
    'kind must be "x", "eps" or "both", got "v"',
  );
  assertEquals(required("q", 3, "w > 0"), 3);
  assertThrows(() => required("q", null, "w > 0"), TypeError, "q is required when w > 0");
});

Deno.test("shape checks read tensors and Batches alike", () => {
  const t = tf.zeros([2, 3]);
  const b = zeros([2, 3]);
  checkShape("t", t, ["B", 3]);
  checkShape("b", b, ["B", "C"]);
  checkSameShape("t", t, "b", b);
  checkShapePair("t", t, "b", b, ["B", "C"]);
  assertThrows(
    () => checkShape("t", t, ["B", 4]),
    RangeError,
    "t must have shape [B, 4], got [2,3]",
  );
  assertThrows(() => checkShape("t", t, ["B", "h", "w"]), RangeError, "[B, h, w]");
  assertThrows(() => checkShape("t", tf.zeros([0, 3]), ["B", "C"]), RangeError, "got [0,3]");
  assertThrows(() => checkShape("t", 7, ["B"]), TypeError, "t must be a tensor or Batch");
  assertThrows(
    () => checkSameShape("a", t, "b", zeros([3, 2])),
    RangeError,
    "b must have the shape of a [2,3], got [3,2]",
  );
  assertThrows(() => checkShapePair("a", t, "b", zeros([2, 4]), ["B", "C"]), RangeError, "b must");
  t.dispose();
});
