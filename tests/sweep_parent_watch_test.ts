import { assert, assertEquals } from "@std/assert";

Deno.test("parent_watch: a worker whose main thread is busy dies with its SIGKILLed parent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parent_watch_" });
  const watch = new URL("../lib/sweep/parent_watch.ts", import.meta.url).href;
  // The child's main thread spins synchronously for 20 s (like a long training step).
  await Deno.writeTextFile(
    `${dir}/busy.ts`,
    `new Worker(${JSON.stringify(watch)}, { type: "module" }).postMessage(Deno.ppid);
await Deno.writeTextFile(${JSON.stringify(`${dir}/pid`)}, String(Deno.pid));
const t0 = Date.now();
while (Date.now() - t0 < 20000) { /* busy */ }`,
  );
  const parent = new Deno.Command("sh", {
    args: ["-c", `"${Deno.execPath()}" run -A "${dir}/busy.ts" & wait`],
  }).spawn();
  let pid = 0;
  for (let i = 0; i < 300 && pid === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    pid = Number(await Deno.readTextFile(`${dir}/pid`).catch(() => "0"));
  }
  await new Promise((r) => setTimeout(r, 300)); // the watcher has read its parent pid
  parent.kill("SIGKILL");
  await parent.status;
  let alive = true;
  for (let i = 0; i < 40 && alive; i++) {
    await new Promise((r) => setTimeout(r, 100));
    alive = await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
  }
  assertEquals(alive, false, `child ${pid} outlived its parent`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parent_watch: a process whose given parent was already gone at start exits at once", async () => {
  // The sweep died while this worker was starting: the pid passed on is no longer the parent.
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  const watch = new URL("../lib/sweep/parent_watch.ts", import.meta.url).href;
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `new Worker(${JSON.stringify(watch)}, { type: "module" }).postMessage(${gone.pid});
const t0 = Date.now();
while (Date.now() - t0 < 20000) { /* busy */ }`,
    ],
  }).spawn();
  const status = await child.status;
  assertEquals(status.signal, "SIGKILL");
  assert(performance.now() - t0 < 15000, "killed before its 20 s busy loop ended");
});
