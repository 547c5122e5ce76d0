/**
 * `show()`: display Plotly figures, PNG images, tables and Markdown from the Deno Jupyter kernel,
 * in a way that survives headless execution (`jupyter nbconvert --execute`).
 *
 * - Figures become a MIME bundle with `application/vnd.plotly.v1+json` (`{data, layout, config}`),
 *   a `text/html` fallback that draws with plotly.js, and a one-line `text/plain` summary.
 *   JupyterLab and VS Code draw the Plotly JSON themselves; the HTML is for nbconvert's HTML
 *   export and other frontends, and must work offline. So the minified plotly.js build of the
 *   `plotly.js-dist-min` npm package is inlined ONCE per kernel session, into the first figure,
 *   gzip-compressed and base64-encoded (1.9 MB instead of 4.8 MB; see
 *   {@link compressedPlotlyScript}); the browser inflates it with `DecompressionStream`. Later
 *   figures wait for `window.Plotly`. An executed notebook thus stays well under 5 MB.
 * - Deno 2.9's kernel can drop a display message sent just before a cell finishes (its output
 *   queue races the kernel's "idle" status). `show()` therefore awaits the broadcast and then
 *   sleeps {@link flushDelayMs} of the payload before resolving. Always `await show(...)`.
 * - Outside Jupyter (`deno run`, tests) `show()` prints the `text/plain` form to stdout (one line
 *   for figures and images, the aligned text for tables), and when the environment variable
 *   `RDD_SHOW_DIR` names a folder it also writes each output there as a standalone `.html`
 *   (plotly.js inlined) or `.png` file.
 * @module
 */

/** One Plotly trace (`{type: "scatter", x, y, ...}`): a JSON-able object. */
export type PlotlyTrace = Record<string, unknown>;

/** A Plotly figure: traces plus optional layout and config, as in `Plotly.newPlot`. */
export interface Figure {
  /** Traces; typed arrays inside are converted to plain arrays when shown. */
  data: PlotlyTrace[];
  /** Plotly layout (title, axes, size in CSS px, ...). */
  layout?: Record<string, unknown>;
  /** Plotly config (responsive, displaylogo, ...). */
  config?: Record<string, unknown>;
}

/** A small table of numbers or strings, shown as HTML, Markdown and aligned plain text. */
export interface Table {
  /** Discriminator; build with `table()` of `figures.ts`. */
  readonly kind: "table";
  /** Column headers, length C. */
  readonly columns: readonly string[];
  /** Rows, each of length C. Numbers are printed with `digits` significant digits. */
  readonly rows: readonly (readonly (string | number)[])[];
  /** Significant digits for numbers (1..17). Default 6. */
  readonly digits?: number;
  /** Optional caption shown above the table. */
  readonly caption?: string;
}

/** A Jupyter MIME bundle: MIME type -> base64/text string or JSON object. */
export type MimeBundle = Record<string, string | object>;

/** A `display_data` message body: the bundle plus per-MIME metadata. */
export interface DisplayMessage {
  /** MIME type -> content. Always has `text/plain`. */
  data: MimeBundle;
  /** MIME type -> metadata (e.g. `{"image/png": {width: 512}}`). */
  metadata: Record<string, Record<string, unknown>>;
}

/** Options of {@link show}. */
export interface ShowOptions {
  /** Images only: display width in CSS px (the PNG keeps its own pixel size). */
  width?: number;
}

/** Anything {@link show} accepts: a Figure, PNG bytes, a Table, or a Markdown string. */
export type Showable = Figure | Uint8Array | Table | string;

/** MIME type of Plotly figures in Jupyter. */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * Milliseconds to wait after a display message of `bytes` bytes so that Deno's kernel flushes
 * it before the cell's idle status: 50 ms + 100 ms per MiB, at most 5000 ms. Measured in a
 * headless run (Deno 2.9.6, nbconvert): a 5 MB message was lost with 0-5 ms of waiting and
 * never with >= 20 ms, so this keeps a 10x margin for slower machines.
 * @param bytes payload size in bytes, finite and >= 0.
 */
export function flushDelayMs(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) {
    throw new RangeError(`bytes must be a finite number >= 0, got ${bytes}`);
  }
  return Math.min(5000, Math.ceil(50 + (100 * bytes) / (1 << 20)));
}

/** Approximate size in bytes of a message: string lengths plus JSON length of objects. */
export function messageBytes(message: DisplayMessage): number {
  let n = JSON.stringify(message.metadata).length;
  for (const v of Object.values(message.data)) {
    n += typeof v === "string" ? v.length : JSON.stringify(v).length;
  }
  return n;
}

/**
 * Deep copy of `value` that JSON can carry faithfully: typed arrays become plain arrays and
 * NaN / +-Infinity become `null` (Plotly's "missing" value). Objects and arrays are recursed.
 */
export function plainJson(value: unknown): unknown {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, (v) => plainJson(v));
  }
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plainJson);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plainJson(v);
    return out;
  }
  return value;
}

/** Makes `source` safe inside an HTML `<script>` element (no premature `</script>`). */
export function escapeScriptText(source: string): string {
  return source.replace(/<\/(script)/gi, "<\\/$1");
}

/** True when `value` looks like a {@link Figure} (an object with a `data` array). */
export function isFigure(value: unknown): value is Figure {
  return value !== null && typeof value === "object" && !ArrayBuffer.isView(value) &&
    Array.isArray((value as Figure).data);
}

/** True when `value` is a {@link Table}. */
export function isTable(value: unknown): value is Table {
  return value !== null && typeof value === "object" && (value as Table).kind === "table";
}

function figureSummary(fig: Figure): string {
  const layoutTitle = fig.layout?.title;
  const title = typeof layoutTitle === "string"
    ? layoutTitle
    : typeof (layoutTitle as { text?: unknown } | undefined)?.text === "string"
    ? (layoutTitle as { text: string }).text
    : "";
  const types = fig.data.map((t) => String(t.type ?? "scatter"));
  return `Figure${title ? ` "${title}"` : ""}: ${fig.data.length} trace(s) [${types.join(", ")}]`;
}

/**
 * The display message of a Plotly figure.
 * @param fig the figure; typed arrays and non-finite numbers are converted by {@link plainJson}.
 * @param divId HTML id of the plot's `<div>` (unique per output).
 * @param plotlyJs a script that defines `window.Plotly` (the plotly.js source, or
 *   {@link compressedPlotlyScript} of it), inlined before the plot; or `undefined` to rely on a
 *   `window.Plotly` loaded by an earlier output; or `null` when plotly.js is unavailable (the
 *   HTML then says so if no earlier output loaded it). Figures wait up to 20 s for it.
 */
export function figureMessage(
  fig: Figure,
  divId: string,
  plotlyJs: string | null | undefined,
): DisplayMessage {
  if (!isFigure(fig)) throw new TypeError("fig must be a Figure {data: PlotlyTrace[], layout?}");
  if (!/^[A-Za-z][\w-]*$/.test(divId)) {
    throw new RangeError(`divId must match [A-Za-z][\\w-]*, got "${divId}"`);
  }
  const spec = plainJson({
    data: fig.data,
    layout: fig.layout ?? {},
    config: { responsive: true, displaylogo: false, ...fig.config },
  }) as Record<string, unknown>;
  const height = typeof fig.layout?.height === "number" ? fig.layout.height : 450;
  const specJs = JSON.stringify(spec).replace(/</g, "\\u003c");
  const missing = plotlyJs === null
    ? "plotly.js is not available (run `deno install`)"
    : "plotly.js is not loaded: re-run this notebook from the first figure";
  const html = [
    `<div id="${divId}" style="width:100%;height:${height}px;"></div>`,
    typeof plotlyJs === "string" ? `<script>${escapeScriptText(plotlyJs)}</script>` : "",
    `<script>(function () {
  var spec = ${specJs};
  function draw(tries) {
    var el = document.getElementById("${divId}");
    if (window.Plotly) { window.Plotly.newPlot(el, spec.data, spec.layout, spec.config); }
    else if (tries < 400) { setTimeout(function () { draw(tries + 1); }, 50); }
    else if (el) { el.textContent = ${JSON.stringify(missing)}; }
  }
  draw(0);
})();</script>`,
  ].join("\n");
  return {
    data: { [PLOTLY_MIME]: spec, "text/html": html, "text/plain": figureSummary(fig) },
    metadata: {},
  };
}

/** Base64 of `bytes` (standard alphabet, padded). */
export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    bin += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(bin);
}

/**
 * Width and height in pixels of a PNG file, read from its IHDR chunk.
 * @param png the PNG file bytes. Throws TypeError if they do not start with a PNG header.
 */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  if (png.length < 24 || PNG_SIGNATURE.some((b, i) => png[i] !== b)) {
    throw new TypeError("png must be the bytes of a PNG file (8-byte signature + IHDR)");
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * The display message of a PNG image (`image/png` as base64).
 * @param png PNG file bytes.
 * @param width optional display width in CSS px (> 0); the pixels are not resampled.
 */
export function imageMessage(png: Uint8Array, width?: number): DisplayMessage {
  const size = pngSize(png);
  if (width !== undefined && !(Number.isFinite(width) && width > 0)) {
    throw new RangeError(`width must be a positive number of CSS px, got ${width}`);
  }
  return {
    data: { "image/png": toBase64(png), "text/plain": `PNG image ${size.width}x${size.height}` },
    metadata: width === undefined ? {} : { "image/png": { width } },
  };
}

/** Throws RangeError unless `t` has >= 1 column, rows of matching length and valid `digits`. */
export function checkTable(t: Table): void {
  if (!Array.isArray(t.columns) || t.columns.length < 1) {
    throw new RangeError("table.columns must have at least 1 entry");
  }
  t.rows.forEach((r, i) => {
    if (r.length !== t.columns.length) {
      throw new RangeError(
        `table.rows[${i}] must have ${t.columns.length} cells (one per column), got ${r.length}`,
      );
    }
  });
  const d = t.digits ?? 6;
  if (!Number.isInteger(d) || d < 1 || d > 17) {
    throw new RangeError(`table.digits must be an integer in 1..17, got ${d}`);
  }
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The display message of a {@link Table}: `text/html`, `text/markdown` and `text/plain`. */
export function tableMessage(t: Table): DisplayMessage {
  checkTable(t);
  const fmt = (v: string | number) =>
    typeof v === "number" ? String(Number(v.toPrecision(t.digits ?? 6))) : v;
  const cells = t.rows.map((r) => r.map(fmt));
  const widths = t.columns.map((c, j) => Math.max(c.length, ...cells.map((r) => r[j].length)));
  const line = (r: readonly string[]) => r.map((s, j) => s.padStart(widths[j])).join("  ");
  const caption = t.caption ? [t.caption] : [];
  const plain = [...caption, line(t.columns), ...cells.map(line)].join("\n");
  const mdRow = (r: readonly string[]) => `| ${r.join(" | ")} |`;
  const markdown = [
    ...caption.map((c) => `**${c}**\n`),
    mdRow(t.columns),
    mdRow(t.columns.map(() => "---:")),
    ...cells.map(mdRow),
  ].join("\n");
  const td = (tag: string, s: string) =>
    `<${tag} style="text-align:right">${escapeHtml(s)}</${tag}>`;
  const html = [
    "<table>",
    t.caption ? `<caption>${escapeHtml(t.caption)}</caption>` : "",
    `<thead><tr>${t.columns.map((c) => td("th", c)).join("")}</tr></thead>`,
    `<tbody>${cells.map((r) => `<tr>${r.map((c) => td("td", c)).join("")}</tr>`).join("")}</tbody>`,
    "</table>",
  ].join("");
  return {
    data: { "text/html": html, "text/markdown": markdown, "text/plain": plain },
    metadata: {},
  };
}

/** Where display messages go: the Jupyter kernel, stdout, files, or a test double. */
export type DisplaySink = (message: DisplayMessage) => Promise<void>;

/** Constructor options of {@link NotebookDisplay}. */
export interface NotebookDisplayOptions {
  /** Receives every message. */
  sink: DisplaySink;
  /** Returns the script that defines `window.Plotly` (see {@link figureMessage}), or null
   * when unavailable. Called at most once. */
  loadPlotlyJs: () => Promise<string | null>;
  /** Inline plotly.js into every figure (standalone files) instead of the first one only. */
  inlineEveryFigure?: boolean;
  /** Waits `ms` milliseconds after each message; default a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Prefix of the plot `<div>` ids; default a random one per instance. */
  idPrefix?: string;
}

/**
 * The per-kernel-session display state: whether plotly.js was already inlined, and a counter
 * for unique plot ids. `show()` uses one instance per process; tests build their own with a
 * fake sink.
 */
export class NotebookDisplay {
  #opts: NotebookDisplayOptions;
  #plotlyJs: Promise<string | null> | undefined;
  #plotlyInlined = false;
  #count = 0;
  #idPrefix: string;

  /** A fresh session state (nothing inlined yet).
   * @param opts sink, plotly.js loader and flush behaviour. */
  constructor(opts: NotebookDisplayOptions) {
    this.#opts = opts;
    this.#idPrefix = opts.idPrefix ?? `rdd-plot-${crypto.randomUUID().slice(0, 8)}`;
  }

  /** True once a figure carrying the plotly.js source has been sent. */
  get plotlyInlined(): boolean {
    return this.#plotlyInlined;
  }

  /** Builds the message of `value` (see {@link Showable}) without sending it. */
  async message(value: Showable, options: ShowOptions = {}): Promise<DisplayMessage> {
    if (typeof value === "string") {
      return { data: { "text/markdown": value, "text/plain": value }, metadata: {} };
    }
    if (value instanceof Uint8Array) return imageMessage(value, options.width);
    if (isTable(value)) return tableMessage(value);
    if (isFigure(value)) {
      const inline = this.#opts.inlineEveryFigure || !this.#plotlyInlined;
      const js = inline ? await (this.#plotlyJs ??= this.#opts.loadPlotlyJs()) : undefined;
      const msg = figureMessage(value, `${this.#idPrefix}-${++this.#count}`, js);
      if (typeof js === "string") this.#plotlyInlined = true;
      return msg;
    }
    throw new TypeError(
      "value must be a Figure {data, layout}, PNG bytes (Uint8Array), a Table or a Markdown string",
    );
  }

  /** Sends `value` to the sink, then waits {@link flushDelayMs} of its size. */
  async show(value: Showable, options: ShowOptions = {}): Promise<void> {
    const msg = await this.message(value, options);
    await this.#opts.sink(msg);
    const sleep = this.#opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    await sleep(flushDelayMs(messageBytes(msg)));
  }
}

/**
 * Reads the minified plotly.js bundle of the `plotly.js-dist-min` package (import map entry)
 * as text, or returns null when it is not installed in a local `node_modules` folder.
 */
export async function loadPlotlyJs(): Promise<string | null> {
  try {
    const url = import.meta.resolve("plotly.js-dist-min");
    return url.startsWith("file:") ? await Deno.readTextFile(new URL(url)) : null;
  } catch {
    return null;
  }
}

/**
 * A script that defines `window.Plotly` from a gzip-compressed, base64-encoded copy of
 * `plotlyJs`: the browser inflates it with `DecompressionStream` (Chromium 80+, Firefox 113+,
 * Safari 16.4+) and runs it as an inline `<script>` (plotly.js 3 sets `window.Plotly` itself,
 * also next to an AMD loader such as require.js). Runs at most once per page.
 * @param plotlyJs the plotly.js source.
 */
export async function compressedPlotlyScript(plotlyJs: string): Promise<string> {
  const gz = await new Response(
    new Blob([plotlyJs]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  return `(function () {
  if (window.Plotly || window.rddPlotlyLoading) return;
  window.rddPlotlyLoading = true;
  var bin = atob("${toBase64(new Uint8Array(gz))}");
  var bytes = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  new Response(stream).text().then(function (src) {
    var s = document.createElement("script");
    s.textContent = src;
    document.head.appendChild(s);
  });
})();`;
}

/** {@link loadPlotlyJs} through {@link compressedPlotlyScript}; null when not installed. */
export async function loadCompressedPlotlyScript(): Promise<string | null> {
  const js = await loadPlotlyJs();
  return js === null ? null : await compressedPlotlyScript(js);
}

/** The `Deno.jupyter` API when running in `deno jupyter`, else undefined. */
export function jupyterApi(): typeof Deno.jupyter | undefined {
  try {
    return Deno.jupyter;
  } catch {
    return undefined;
  }
}

/**
 * A sink for plain `deno run`: prints the `text/plain` form; with `dir` set, also writes
 * `show-NNN.png` or `show-NNN.html` (a standalone page) into `dir`.
 */
export function consoleSink(dir?: string): DisplaySink {
  let n = 0;
  return async (msg) => {
    console.log(`[show] ${msg.data["text/plain"]}`);
    if (!dir) return;
    await Deno.mkdir(dir, { recursive: true });
    const base = `${dir}/show-${String(++n).padStart(3, "0")}`;
    const png = msg.data["image/png"];
    const html = msg.data["text/html"];
    if (typeof png === "string") {
      await Deno.writeFile(`${base}.png`, Uint8Array.from(atob(png), (c) => c.charCodeAt(0)));
    } else if (typeof html === "string") {
      await Deno.writeTextFile(
        `${base}.html`,
        `<!doctype html>\n<html><head><meta charset="utf-8"></head><body>\n${html}\n</body></html>\n`,
      );
    }
  };
}

let processDisplay: NotebookDisplay | undefined;

function defaultDisplay(): NotebookDisplay {
  if (processDisplay) return processDisplay;
  const jupyter = jupyterApi();
  const dir = jupyter ? undefined : Deno.env.get("RDD_SHOW_DIR") || undefined;
  const sink: DisplaySink = jupyter
    ? (msg) => jupyter.broadcast("display_data", { ...msg, transient: {} })
    : consoleSink(dir);
  processDisplay = new NotebookDisplay({
    sink,
    loadPlotlyJs: loadCompressedPlotlyScript,
    inlineEveryFigure: dir !== undefined,
  });
  return processDisplay;
}

/**
 * Displays a Figure (Plotly), PNG bytes, a Table or a Markdown string in the notebook, and
 * resolves once the output is safely flushed. Always `await` it as a cell's last statement.
 * Outside Jupyter it prints the `text/plain` form (and writes files when `RDD_SHOW_DIR` is set).
 * @param value what to show; see {@link Showable}.
 * @param options e.g. `{width: 400}` to display an image 400 CSS px wide.
 */
export function show(value: Showable, options: ShowOptions = {}): Promise<void> {
  return defaultDisplay().show(value, options);
}
