/**
 * A Web Worker that SIGKILLs its own process once the process's parent has died. Post it the
 * parent's pid: it compares that with the current parent pid at once and every 0.5 s, so a
 * process whose parent died while it was still starting (and was reparented before the
 * worker could read its parent) exits too. It runs on its own thread, so it works while the
 * main thread is busy in a long synchronous training step. `deno task sweep --cell ID
 * --exit-with-parent PID` starts it.
 * @module
 */
// The worker global scope; typed here as the window's, whose `message` listener is the same.
globalThis.addEventListener("message", (e) => {
  const parent = (e as MessageEvent<number>).data;
  const check = () => {
    if (Deno.ppid !== parent) Deno.kill(Deno.pid, "SIGKILL");
  };
  check();
  setInterval(check, 500);
});
