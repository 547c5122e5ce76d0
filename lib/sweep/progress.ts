/**
 * Progress of a running sweep: one line per change in a terminal, and in a Jupyter notebook
 * a live table (one row per cell with its state, and the counts with the ETA as caption)
 * that is updated in place.
 * @module
 */
import { jupyterApi, type Table, tableMessage } from "../notebook/show.ts";
import type { Cell } from "./spec.ts";
import { progressLine, type SweepProgress } from "./local.ts";

/** The live table of a sweep's progress. */
export function progressTable(name: string, cells: readonly Cell[], p: SweepProgress): Table {
  return {
    kind: "table",
    caption: `sweep ${name}: ${progressLine(p)}`,
    columns: ["cell", "variant", "seed", "state"],
    rows: cells.map((c) => [c.id, c.variant, c.seed, p.states[c.id] ?? "pending"]),
  };
}

/**
 * The default progress callback: in `deno jupyter` a table updated in place
 * (display_data, then update_display_data with one display id), elsewhere a printed line.
 */
export function defaultProgress(name: string, cells: readonly Cell[]): (p: SweepProgress) => void {
  const jupyter = jupyterApi();
  if (!jupyter) return (p) => console.log(`sweep ${name}: ${progressLine(p)}`);
  const displayId = `sweep-${name}-${crypto.randomUUID().slice(0, 8)}`;
  let shown = false;
  return (p) => {
    const msg = tableMessage(progressTable(name, cells, p));
    const kind = shown ? "update_display_data" : "display_data";
    shown = true;
    jupyter.broadcast(kind, { ...msg, transient: { display_id: displayId } });
  };
}
