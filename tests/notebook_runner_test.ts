import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  checkNotebook,
  EXPECT_MIME,
  expectedKinds,
  MAX_NOTEBOOK_BYTES,
  type NotebookJson,
  plotlyOutputCount,
  renderProblems,
  sizeProblem,
} from "../.ci/notebooks.ts";
import { figureMessage, loadCompressedPlotlyScript } from "../lib/notebook/show.ts";

type Cell = NotebookJson["cells"][number];

const display = (...mimes: string[]) => ({
  output_type: "display_data",
  data: Object.fromEntries(mimes.map((m) => [m, "x"])),
});

function code(source: string, outputs: Cell["outputs"] = [], count: number | null = 1): Cell {
  return { cell_type: "code", source: source.split(/(?<=\n)/), execution_count: count, outputs };
}

Deno.test("expectedKinds lists one entry per expect comment and rejects unknown kinds", () => {
  assertEquals(
    expectedKinds("// expect: plotly\nawait show(f);\n  //expect:image \n// expect: plotly"),
    ["plotly", "image", "plotly"],
  );
  assertEquals(expectedKinds("const a = 1; // expect: plotly"), []);
  assertThrows(() => expectedKinds("// expect: video"), RangeError, "video");
});

Deno.test("checkNotebook passes when every expected display is present", () => {
  const nb: NotebookJson = {
    cells: [
      { cell_type: "markdown", source: "# t\n// expect: plotly" },
      code("import { show } from '@rdd/toolkit';"),
      code("// expect: plotly\n// expect: image\nawait show(f); await show(g);", [
        display(EXPECT_MIME.plotly, "text/html", "text/plain"),
        display("image/png", "text/plain"),
      ]),
      code("", [], null),
    ],
  };
  assertEquals(checkNotebook(nb), []);
});

Deno.test("checkNotebook reports errors, missing outputs, untagged show and unexecuted cells", () => {
  const nb: NotebookJson = {
    cells: [
      code("// expect: plotly\n// expect: plotly\nawait show(a); await show(b);", [
        display(EXPECT_MIME.plotly),
        { output_type: "execute_result", data: { [EXPECT_MIME.plotly]: {} } },
      ]),
      code("await show(x);", [display("text/markdown")]),
      code("throw new Error('boom')", [{ output_type: "error", ename: "Error", evalue: "boom" }]),
      code("// expect: table\nawait show(t)", [], null),
      code("// expect: gif\nawait show(t)", []),
    ],
  };
  assertEquals(checkNotebook(nb), [
    "cell 0: expected 2 plotly output(s), got 1",
    'cell 1: calls show( but has no "// expect: KIND" comment',
    "cell 2: raised Error: boom",
    "cell 3: was not executed",
    "cell 3: expected 1 table output(s), got 0",
    'cell 4: expect comment must name one of plotly,image,table,markdown, got "gif"',
  ]);
});

Deno.test("checkNotebook reports start-up noise in stream outputs", () => {
  const stream = (name: string, text: string | string[]) => ({ output_type: "stream", name, text });
  const nb: NotebookJson = {
    cells: [
      code("// expect: markdown\nawait show(m)", [display("text/markdown")]),
      code("console.log(1)", [stream("stdout", "step 1 | loss 0.5\n")]),
      code("x", [stream("stderr", "error: XDG_RUNTIME_DIR is invalid or not set\n")]),
      code("y", [
        stream("stdout", [
          "Hi, looks like you are running TensorFlow.js in Node.js. ",
          "see tfjs-node",
        ]),
      ]),
    ],
  };
  assertEquals(checkNotebook(nb), [
    "cell 2: stderr output matches /^error:/m",
    "cell 3: stdout output matches /tfjs-node|install our node backend/",
  ]);
});

Deno.test("checkNotebook fails a notebook that expects nothing", () => {
  assertEquals(checkNotebook({ cells: [code("1 + 1")] }), [
    'notebook has no "// expect: KIND" comment',
  ]);
});

Deno.test("sizeProblem and plotlyOutputCount", () => {
  assertEquals(sizeProblem(MAX_NOTEBOOK_BYTES), undefined);
  assertEquals(sizeProblem(5_200_000), "executed notebook is 5.20 MB, more than 5 MB");
  const nb: NotebookJson = {
    cells: [
      code("a", [display(EXPECT_MIME.plotly, "text/html"), display("image/png")]),
      code("b", [display(EXPECT_MIME.plotly)]),
    ],
  };
  assertEquals(plotlyOutputCount(nb), 2);
});

Deno.test("renderProblems: offline Chromium draws figures that carry compressed plotly.js", async () => {
  const script = await loadCompressedPlotlyScript();
  assert(script !== null, "plotly.js-dist-min is not installed: run `deno install`");
  const fig = { data: [{ type: "scatter", x: [1, 2], y: [3, 4] }], layout: { height: 200 } };
  // An AMD loader on the page (require.js in some HTML exports) must not keep plotly.js from
  // setting window.Plotly.
  const amd = "<script>window.define = function () {}; window.define.amd = {};</script>";
  const page = (parts: string[]) =>
    `<!doctype html><html><head>${amd}</head><body>${parts.join("\n")}
<script src="https://cdn.example.invalid/require.js"></script></body></html>`;
  const html = (m: { data: Record<string, unknown> }) => m.data["text/html"] as string;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/ok.html`,
      page([html(figureMessage(fig, "a", script)), html(figureMessage(fig, "b", undefined))]),
    );
    assertEquals(await renderProblems(`${dir}/ok.html`, 2), []);
    await Deno.writeTextFile(`${dir}/none.html`, page([html(figureMessage(fig, "a", null))]));
    const problems = await renderProblems(`${dir}/none.html`, 1, 1500);
    assertEquals(problems.length, 1);
    assertStringIncludes(problems[0], "drew 0 of 1 plot(s)");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
