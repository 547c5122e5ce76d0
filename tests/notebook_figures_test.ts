import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  linePlot,
  PALETTE,
  scatterPlot,
  type Series,
  sideBySide,
  table,
} from "../lib/notebook/figures.ts";
import { tableMessage } from "../lib/notebook/show.ts";

type Trace = Record<string, unknown> & { line: { color: string }; marker?: { size: number } };
type Layout = Record<string, Record<string, unknown>>;

Deno.test("linePlot: one trace per series, default x, palette colours, log axis", () => {
  const f = linePlot(
    [{ name: "a", y: new Float64Array([3, 2, 1]) }, { x: [1, 10, 100], y: [1, 2, 3], dash: "dot" }],
    { title: "T", xTitle: "t", yTitle: "abar", logY: true, height: 250 },
  );
  const [a, b] = f.data as Trace[];
  assertEquals(a.x, [0, 1, 2]);
  assertEquals(a.y, [3, 2, 1]);
  assert(Array.isArray(a.y), "typed arrays must become plain arrays");
  assertEquals([a.mode, a.name, a.showlegend, a.line.color], ["lines", "a", true, PALETTE[0]]);
  assertEquals([b.showlegend, b.line, b.marker], [
    false,
    { color: PALETTE[1], dash: "dot" },
    undefined,
  ]);
  const l = f.layout as Layout;
  assertEquals(l.yaxis, { title: { text: "abar" }, type: "log" });
  assertEquals(l.xaxis, { title: { text: "t" } });
  assertEquals([l.title, l.height], [{ text: "T" }, 250]);
});

Deno.test("scatterPlot: markers by default, equal aspect, input checks", () => {
  const f = scatterPlot([{ name: "s", x: [0, 1], y: [1, 0], markerSize: 2 }], {
    equalAspect: true,
  });
  const t = f.data[0] as Trace;
  assertEquals([t.mode, t.opacity, t.marker!.size], ["markers", 0.6, 2]);
  assertEquals((f.layout as Layout).yaxis.scaleanchor, "x");
  assertThrows(() => scatterPlot([]), RangeError, "series");
  assertThrows(() => scatterPlot([{ x: [1], y: [1, 2] }]), RangeError, "series[0].x");
  assertThrows(() => linePlot([{} as Series]), TypeError, "series[0].y");
});

Deno.test("sideBySide: per-panel axes, one legend entry per name, panel titles", () => {
  const s: Series[] = [{ name: "a", y: [1, 2] }, { name: "b", y: [2, 1] }];
  const f = sideBySide([
    linePlot(s, { title: "left", logY: true }),
    scatterPlot(s, { title: "right", equalAspect: true }),
  ], { title: "both" });
  const traces = f.data as Trace[];
  assertEquals(traces.map((t) => [t.xaxis, t.yaxis]), [["x", "y"], ["x", "y"], ["x2", "y2"], [
    "x2",
    "y2",
  ]]);
  assertEquals(traces.map((t) => t.showlegend), [true, true, false, false]);
  // Same series -> same colour in both panels.
  assertEquals(traces[0].line.color, traces[2].line.color);
  const l = f.layout as Layout & { annotations: Record<string, unknown>[] };
  assertEquals(l.grid, { rows: 1, columns: 2, pattern: "independent" });
  assertEquals(l.yaxis.type, "log");
  assertEquals(l.yaxis2.scaleanchor, "x2");
  assertEquals(l.annotations.map((a) => [a.text, a.xref]), [["left", "x domain"], [
    "right",
    "x2 domain",
  ]]);
  assertThrows(() => sideBySide([]), RangeError, "figures");
});

Deno.test("table: builds a Table and validates rows and digits", () => {
  const t = table(["a", "b"], [[1, 0.5]], { digits: 2, caption: "c" });
  assertEquals(tableMessage(t).data["text/plain"], "c\na    b\n1  0.5");
  assertThrows(() => table(["a", "b"], [[1]]), RangeError, "rows[0]");
  assertThrows(() => table([], []), RangeError, "columns");
  assertThrows(() => table(["a"], [], { digits: 18 }), RangeError, "digits");
});
