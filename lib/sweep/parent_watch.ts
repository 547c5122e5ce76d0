/**
 * A Web Worker that SIGKILLs its own process once the process's parent has died (the parent
 * pid changes). It runs on its own thread, so it works while the main thread is busy in a
 * long synchronous training step. Start it with `watchParent()` of lib/sweep/cell.ts.
 * @module
 */
const parent = Deno.ppid;
setInterval(() => {
  if (Deno.ppid !== parent) Deno.kill(Deno.pid, "SIGKILL");
}, 500);
