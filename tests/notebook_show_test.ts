import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { encode } from "fast-png";
import {
  compressedPlotlyScript,
  consoleSink,
  type DisplayMessage,
  escapeScriptText,
  type Figure,
  figureMessage,
  flushDelayMs,
  imageMessage,
  jupyterApi,
  loadCompressedPlotlyScript,
  loadPlotlyJs,
  messageBytes,
  NotebookDisplay,
  plainJson,
  PLOTLY_MIME,
  pngSize,
  show,
  tableMessage,
  toBase64,
} from "../lib/notebook/show.ts";

const FIG: Figure = {
  data: [{ type: "scatter", x: new Float64Array([0, 1, 2]), y: [1, NaN, Infinity] }],
  layout: { title: { text: "a <b>title</b>" }, height: 300 },
};

function fromBase64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function fakeDisplay(plotly: string | null, inlineEveryFigure = false) {
  const sent: DisplayMessage[] = [];
  const slept: number[] = [];
  let loads = 0;
  const display = new NotebookDisplay({
    sink: (m) => {
      sent.push(m);
      return Promise.resolve();
    },
    loadPlotlyJs: () => {
      loads++;
      return Promise.resolve(plotly);
    },
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
    inlineEveryFigure,
    idPrefix: "p",
  });
  return { display, sent, slept, loads: () => loads };
}

const html = (m: DisplayMessage) => m.data["text/html"] as string;

Deno.test("flushDelayMs: 50 ms base, 100 ms per MiB, capped at 5 s, rejects bad sizes", () => {
  assertEquals(flushDelayMs(0), 50);
  assertEquals(flushDelayMs(1 << 20), 150);
  assertEquals(flushDelayMs(12.5 * (1 << 20)), 1300);
  assertEquals(flushDelayMs(1e12), 5000);
  let prev = 0;
  for (let b = 0; b < 1e8; b = b * 3 + 1000) {
    assert(flushDelayMs(b) >= prev, `not monotone at ${b}`);
    prev = flushDelayMs(b);
  }
  assertThrows(() => flushDelayMs(-1), RangeError, "bytes");
  assertThrows(() => flushDelayMs(NaN), RangeError, "bytes");
});

Deno.test("messageBytes adds string lengths and JSON lengths", () => {
  const m: DisplayMessage = {
    data: { "text/plain": "abc", [PLOTLY_MIME]: { a: 1 } },
    metadata: { "image/png": { width: 2 } },
  };
  assertEquals(
    messageBytes(m),
    3 + JSON.stringify({ a: 1 }).length + '{"image/png":{"width":2}}'.length,
  );
});

Deno.test("plainJson turns typed arrays into arrays and non-finite numbers into null", () => {
  assertEquals(plainJson({ a: new Float32Array([0.5, NaN]), b: [Infinity, { c: -Infinity }] }), {
    a: [0.5, null],
    b: [null, { c: null }],
  });
  assertEquals(plainJson(new Int32Array([1, 2])), [1, 2]);
  assertEquals(plainJson("x"), "x");
  assertEquals(plainJson(null), null);
});

Deno.test("escapeScriptText removes </script but keeps the script's meaning", () => {
  const src = 'var s = "a</script>b" + "</SCRIPT>"; var r = /<\\/script>/.source;';
  const esc = escapeScriptText(src);
  assert(!/<\/script/i.test(esc), esc);
  const run = (code: string) => new Function(`${code}; return [s, r];`)();
  assertEquals(run(esc), run(src));
});

Deno.test("figureMessage: Plotly JSON, text/html drawing the div, summary text", () => {
  const m = figureMessage(FIG, "fig-1", "/* PLOTLY SOURCE */");
  const spec = m.data[PLOTLY_MIME] as { data: { x: unknown; y: unknown }[]; layout: unknown };
  assertEquals(spec.data[0].x, [0, 1, 2]);
  assertEquals(spec.data[0].y, [1, null, null]);
  assertEquals(spec.layout, FIG.layout);
  assertEquals(m.data["text/plain"], 'Figure "a <b>title</b>": 1 trace(s) [scatter]');
  const h = html(m);
  assertStringIncludes(h, '<div id="fig-1" style="width:100%;height:300px;">');
  assertStringIncludes(h, "<script>/* PLOTLY SOURCE */</script>");
  assertStringIncludes(h, "newPlot(el, spec.data");
  // The figure's own "<" never reaches the HTML raw (it could close the script element).
  assert(!h.includes("<b>title"), "raw < in the inlined spec");
  assertStringIncludes(h, "\\u003cb>title");
  assert(!html(figureMessage(FIG, "fig-2", undefined)).includes("PLOTLY SOURCE"));
  assertStringIncludes(html(figureMessage(FIG, "f", null)), "plotly.js is not available");
  assertThrows(() => figureMessage(FIG, 'x" onload="', "js"), RangeError, "divId");
  assertThrows(() => figureMessage({} as Figure, "f", "js"), TypeError, "fig");
});

Deno.test("NotebookDisplay inlines plotly.js in the first figure only and loads it once", async () => {
  const { display, sent, slept, loads } = fakeDisplay("/*PLOTLY*/");
  assert(!display.plotlyInlined);
  await display.show(FIG);
  await display.show("# markdown");
  await display.show(FIG);
  await display.show(FIG);
  assert(display.plotlyInlined);
  assertEquals(loads(), 1);
  const figs = sent.filter((m) => PLOTLY_MIME in m.data);
  assertEquals(figs.length, 3);
  assertEquals(figs.map((m) => html(m).includes("/*PLOTLY*/")), [true, false, false]);
  // Unique div ids.
  assertEquals(new Set(figs.map((m) => html(m).match(/id="([^"]+)"/)![1])).size, 3);
  // Every message was followed by its flush delay.
  assertEquals(slept, sent.map((m) => flushDelayMs(messageBytes(m))));
});

Deno.test("NotebookDisplay: standalone mode inlines every figure; missing plotly.js is cached", async () => {
  const every = fakeDisplay("/*PLOTLY*/", true);
  await every.display.show(FIG);
  await every.display.show(FIG);
  assertEquals(every.sent.map((m) => html(m).includes("/*PLOTLY*/")), [true, true]);
  assertEquals(every.loads(), 1);

  const none = fakeDisplay(null);
  await none.display.show(FIG);
  await none.display.show(FIG);
  assert(!none.display.plotlyInlined);
  assertEquals(none.loads(), 1);
  assertStringIncludes(html(none.sent[1]), "plotly.js is not available");
  await assertRejects(() => none.display.show(42 as unknown as string), TypeError, "value");
});

Deno.test("toBase64 matches btoa, including inputs longer than one chunk", () => {
  assertEquals(toBase64(new TextEncoder().encode("Man")), "TWFu");
  assertEquals(toBase64(new Uint8Array([255, 0])), "/wA=");
  const big = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7919) % 256);
  assertEquals(fromBase64(toBase64(big)), big);
});

Deno.test("imageMessage: base64 PNG round trip, size text, display width metadata", () => {
  const png = encode({ width: 3, height: 2, data: new Uint8Array(6).fill(9), channels: 1 });
  assertEquals(pngSize(png), { width: 3, height: 2 });
  const m = imageMessage(png, 120);
  assertEquals(fromBase64(m.data["image/png"] as string), png);
  assertEquals(m.data["text/plain"], "PNG image 3x2");
  assertEquals(m.metadata, { "image/png": { width: 120 } });
  assertEquals(imageMessage(png).metadata, {});
  assertThrows(() => imageMessage(png, 0), RangeError, "width");
  assertThrows(() => imageMessage(new Uint8Array(30)), TypeError, "png");
});

Deno.test("tableMessage: aligned text, markdown, escaped HTML, significant digits", () => {
  const m = tableMessage({
    kind: "table",
    columns: ["t", "a<b"],
    rows: [[0, 0.123456789], [10, 2]],
    digits: 3,
    caption: "cap",
  });
  assertEquals(m.data["text/plain"], "cap\n t    a<b\n 0  0.123\n10      2");
  assertStringIncludes(
    m.data["text/markdown"] as string,
    "| t | a<b |\n| ---: | ---: |\n| 0 | 0.123 |",
  );
  assertStringIncludes(m.data["text/html"] as string, "a&lt;b</th>");
  assertStringIncludes(m.data["text/html"] as string, "<caption>cap</caption>");
  assertThrows(
    () => tableMessage({ kind: "table", columns: ["a", "b"], rows: [[1]] }),
    RangeError,
    "rows[0]",
  );
  assertThrows(
    () => tableMessage({ kind: "table", columns: ["a"], rows: [], digits: 0 }),
    RangeError,
    "digits",
  );
});

Deno.test("outside Jupyter: no kernel API, show() resolves, consoleSink writes files", async () => {
  assertEquals(jupyterApi(), undefined);
  await show("plain deno run prints one line");
  const dir = await Deno.makeTempDir();
  try {
    const sink = consoleSink(dir);
    const png = encode({ width: 1, height: 1, data: new Uint8Array([7]), channels: 1 });
    await sink(imageMessage(png));
    await sink(figureMessage(FIG, "f", "/*JS*/"));
    assertEquals(await Deno.readFile(`${dir}/show-001.png`), png);
    const page = await Deno.readTextFile(`${dir}/show-002.html`);
    assert(page.startsWith("<!doctype html>"));
    assertStringIncludes(page, "/*JS*/");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadPlotlyJs reads the minified plotly.js-dist-min bundle from node_modules", async () => {
  const js = await loadPlotlyJs();
  assert(js !== null, "plotly.js-dist-min is not installed: run `deno install`");
  assertStringIncludes(js.slice(0, 200), "plotly.js v3.1.0");
  assertStringIncludes(js.slice(-2000), "window.Plotly = Plotly");
  assert(js.length > 1e6, `plotly.js has only ${js.length} characters`);
});

Deno.test("compressedPlotlyScript carries the exact source gzip+base64, under 2.1 MB for plotly.js", async () => {
  const src = "window.Plotly = {v: '</script>'}; // " + "x".repeat(5000);
  const script = await compressedPlotlyScript(src);
  const b64 = script.match(/atob\("([A-Za-z0-9+/=]+)"\)/)![1];
  const inflated = await new Response(
    new Blob([fromBase64(b64) as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    ),
  ).text();
  assertEquals(inflated, src);
  assert(!script.includes("</script>"), "the compressed script can sit in a <script> element");
  assert(script.length < src.length / 2, `no compression: ${script.length}`);
  const real = await loadCompressedPlotlyScript();
  assert(real !== null, "plotly.js-dist-min is not installed: run `deno install`");
  assert(real.length < 2.1e6, `compressed plotly.js has ${real.length} characters`);
});
