/**
 * Headless Chromium through `puppeteer-core` (which never downloads a browser): one home for
 * launching the system's Chromium, used by the figure export and the notebook checks. Pages
 * are offline: every request other than `file:`, `data:`, `blob:` and `about:` is aborted.
 * @module
 */
import puppeteer from "puppeteer-core";

/** The Chromium binary: env `RDD_CHROMIUM`, else Debian's `/usr/bin/chromium`. */
export function chromiumPath(): string {
  return Deno.env.get("RDD_CHROMIUM") || "/usr/bin/chromium";
}

/** Thrown when no Chromium binary exists at the expected path; its message is one line. */
export class ChromiumMissingError extends Error {
  /**
   * Names the missing binary and the install command.
   * @param path the path that was tried.
   */
  constructor(path: string) {
    super(
      `Chromium not found at ${path}: install it with \`apt-get install -y chromium\` ` +
        "(or set RDD_CHROMIUM to a Chromium binary)",
    );
    this.name = "ChromiumMissingError";
  }
}

/** Options of {@link ChromiumPage.pdf}: the page size as CSS lengths ("600px", "8in"). */
export interface PdfOptions {
  /** Page width, e.g. "700px". */
  width: string;
  /** Page height, e.g. "450px". */
  height: string;
}

/** The part of an offline Chromium tab this project uses. */
export interface ChromiumPage {
  /** Opens `url` (a `file:` URL) and waits for its load event. */
  goto(url: string): Promise<void>;
  /** Replaces the document with `html` and waits for its load event. */
  setContent(html: string): Promise<void>;
  /** Evaluates a JavaScript expression in the page (awaiting a promise) and returns its value. */
  evaluate(expression: string): Promise<unknown>;
  /** Prints the page to a one-page-per-sheet PDF of the given size, backgrounds included. */
  pdf(options: PdfOptions): Promise<Uint8Array>;
  /** Messages of uncaught page errors so far. */
  readonly errors: readonly string[];
}

/**
 * Launches headless Chromium (`--no-sandbox` for root in CI), opens one offline page, runs
 * `fn` on it and closes the browser. Throws {@link ChromiumMissingError} when the binary is
 * missing.
 * @param fn what to do with the page.
 * @param path the Chromium binary; default {@link chromiumPath}.
 */
export async function withChromiumPage<T>(
  fn: (page: ChromiumPage) => Promise<T>,
  path: string = chromiumPath(),
): Promise<T> {
  try {
    if (!(await Deno.stat(path)).isFile) throw new ChromiumMissingError(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ChromiumMissingError(path);
    throw e;
  }
  const browser = await puppeteer.launch({
    executablePath: path,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--font-render-hinting=none"],
  });
  try {
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(String((e as Error).message ?? e)));
    await p.setRequestInterception(true);
    p.on("request", (r) => {
      if (/^(file|data|blob|about):/.test(r.url())) r.continue();
      else r.abort();
    });
    return await fn({
      goto: async (url) => void (await p.goto(url, { waitUntil: "load" })),
      setContent: (html) => p.setContent(html, { waitUntil: "load" }),
      evaluate: (expression) => p.evaluate(expression),
      pdf: (o) => p.pdf({ width: o.width, height: o.height, printBackground: true }),
      errors,
    });
  } finally {
    await browser.close();
  }
}
