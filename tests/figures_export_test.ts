import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { DOMParser } from "@xmldom/xmldom";
import { PDFDocument } from "pdf-lib";
import { decode, encode } from "fast-png";
import { REPRO } from "./figures_fixtures.ts";
import { dataUrlBytes } from "../lib/figures/export.ts";

/** Runs `deno task figures -- ARGS` as the README shows it. */
async function figuresTask(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "figures", "--", ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** A results folder with a reproduction, an ablation, two sample sheets and one round's log. */
async function fixtureResults(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/reproduction`, { recursive: true });
  await Deno.writeTextFile(`${dir}/reproduction/summary.json`, JSON.stringify(REPRO));
  await Deno.mkdir(`${dir}/ablation`);
  const ci = { n: 3, missing: 0, sd: 1 };
  await Deno.writeTextFile(
    `${dir}/ablation/summary.json`,
    JSON.stringify({
      sweep: "abl",
      baseline: "base",
      metrics: ["cfid"],
      variants: [{ name: "base", overrides: {} }, { name: "noMP", overrides: { x: 0 } }],
      rows: [
        { variant: "base", metric: "cfid", mean: 6, ciLow: 5, ciHigh: 7, diff: null, ...ci },
        {
          variant: "noMP",
          metric: "cfid",
          mean: 7,
          ciLow: 6,
          ciHigh: 8,
          diff: { baseline: "base", n: 3, mean: 1, ciLow: 0.5, ciHigh: 1.5, p: 0.03 },
          ...ci,
        },
      ],
    }),
  );
  await Deno.mkdir(`${dir}/reproduction/samples`);
  const png = encode({ width: 10, height: 10, data: new Uint8Array(100).fill(128), channels: 1 });
  await Deno.writeFile(`${dir}/reproduction/samples/teacher_DDIM_1step.png`, png);
  await Deno.writeFile(`${dir}/reproduction/samples/RDD_1step.png`, png);
  await Deno.mkdir(`${dir}/runs/round_2_to_1`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/runs/round_2_to_1/round.json`,
    JSON.stringify({
      kind: "distill-round",
      method: "rdd",
      teacherSteps: 2,
      studentSteps: 1,
      seed: 3,
    }),
  );
  await Deno.writeTextFile(
    `${dir}/runs/round_2_to_1/metrics.jsonl`,
    '{"step":1,"loss":0.5}\n{"step":2,"loss":0.25}\n',
  );
}

const EXPECTED: Record<string, { traces: string[]; images?: number }> = {
  quality_vs_nfe: { traces: ["ddim", "pd"] },
  ablation: { traces: ["cfid (95% CI)", "paired difference to base (95% CI)"] },
  samples: { traces: [], images: 2 },
  speed_quality: { traces: ["ddim", "pd", "frontier"] },
  loss_curves: { traces: ["RDD 2 -> 1 (1 seed)"] },
};

Deno.test("deno task figures -- --results DIR: every figure as SVG (traces), 1-page PDF, sized PNG", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fixtureResults(`${dir}/results`);
    const r = await figuresTask([
      "--results",
      `${dir}/results`,
      "--data",
      `${dir}/no-data`,
      "--out",
      `${dir}/out`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "figures: 5 rendered (svg, pdf, png), 0 skipped");
    for (const [name, want] of Object.entries(EXPECTED)) {
      const svgText = await Deno.readTextFile(`${dir}/out/${name}.svg`);
      const errors: string[] = [];
      const doc = new DOMParser({ onError: (_l, m) => void errors.push(m) }).parseFromString(
        svgText,
        "image/svg+xml",
      );
      assertEquals(errors, [], `${name}.svg does not parse`);
      const svg = doc.documentElement!;
      assertEquals(svg.nodeName, "svg");
      const width = Number(svg.getAttribute("width"));
      const height = Number(svg.getAttribute("height"));
      assert(width > 100 && height > 100, `${name}.svg size ${width}x${height}`);
      const groups = [...svg.getElementsByTagName("g")].map((g) => g.getAttribute("class") ?? "");
      const scatter = groups.filter((c) => /\btrace\b/.test(c) && /\bscatter\b/.test(c)).length;
      const texts = [...svg.getElementsByTagName("text")].map((t) => t.textContent);
      for (const t of want.traces) assert(texts.includes(t), `${name}.svg has no legend "${t}"`);
      if (want.images) {
        assertEquals(svg.getElementsByTagName("image").length, want.images, name);
      } else {
        assert(scatter >= want.traces.length, `${name}.svg has ${scatter} scatter traces`);
      }
      const pdf = await PDFDocument.load(await Deno.readFile(`${dir}/out/${name}.pdf`));
      assertEquals(pdf.getPageCount(), 1, `${name}.pdf pages`);
      const page = pdf.getPage(0).getSize();
      assert(Math.abs(page.width - width * 0.75) < 1, `${name}.pdf width ${page.width}`);
      assert(Math.abs(page.height - height * 0.75) < 1, `${name}.pdf height ${page.height}`);
      const png = decode(await Deno.readFile(`${dir}/out/${name}.png`));
      assertEquals([png.width, png.height], [width, height], `${name}.png size`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task figures: skipped figures are named with the reason; user errors are one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/results`);
    const common = ["--results", `${dir}/results`, "--data", `${dir}/none`, "--out", `${dir}/o`];
    const r = await figuresTask([...common, "--formats", "png"]);
    assertEquals(r.code, 0, r.stderr);
    for (const name of Object.keys(EXPECTED)) assertStringIncludes(r.stdout, `skipped ${name}: `);
    assertStringIncludes(r.stdout, "skipped ablation: no ");
    assertStringIncludes(r.stdout, "figures: 0 rendered (png), 5 skipped");

    const help = await figuresTask(["--help"]);
    assertEquals(help.code, 0);
    assertStringIncludes(help.stdout, "--formats LIST");
    const bad = await figuresTask([...common, "--formats", "svg,gif"]);
    assertEquals(bad.code, 2);
    assertEquals(bad.stderr.trim().split("\n"), [
      `error: --formats: expected a comma-separated list of svg, pdf, png, got "svg,gif"`,
    ]);
    await fixtureResults(`${dir}/results`);
    const noChromium = await figuresTask(common, { RDD_CHROMIUM: `${dir}/no-chromium` });
    assertEquals(noChromium.code, 2);
    const lines = noChromium.stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
    assertEquals(lines.length, 1, noChromium.stderr);
    assertStringIncludes(lines[0], "apt-get install -y chromium");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataUrlBytes decodes base64 and percent-encoded data: URLs", () => {
  assertEquals(dataUrlBytes("data:image/png;base64,AAEC"), new Uint8Array([0, 1, 2]));
  assertEquals(new TextDecoder().decode(dataUrlBytes("data:image/svg+xml,%3Csvg%3E")), "<svg>");
});
