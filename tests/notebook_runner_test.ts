import { assertEquals, assertThrows } from "@std/assert";
import { checkNotebook, EXPECT_MIME, expectedKinds, type NotebookJson } from "../.ci/notebooks.ts";

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

Deno.test("checkNotebook fails a notebook that expects nothing", () => {
  assertEquals(checkNotebook({ cells: [code("1 + 1")] }), [
    'notebook has no "// expect: KIND" comment',
  ]);
});
