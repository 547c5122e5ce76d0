// `evalTeacher: false` leaves the teacher's DDIM rows (and grids) out of a distillation run's
// table; by default they are there next to the students.
import { assertEquals } from "@std/assert";
import { parseDistillArgs, runDistill } from "../lib/cli/distill.ts";
import { selectBackend } from "../lib/tfjs/backend.ts";

await selectBackend(); // the fast CPU path, as `deno task distill` uses (stock tfjs takes minutes)

const tmp = await Deno.makeTempDir({ prefix: "distill_eval_teacher_" });

Deno.test("distill: evalTeacher false scores only the students", async () => {
  const models: Record<string, string[]> = {};
  for (const evalTeacher of [true, false]) {
    const args = await parseDistillArgs([
      ...["--teacher", "data/teacher", "--classifier", "data/classifier", "--method", "pd"],
      ...["--from-steps", "2", "--to-steps", "1", "--steps-per-round", "2", "--batch", "4"],
      ...["--eval-samples", "8", "--run", `${tmp}/${evalTeacher}`],
    ]);
    const r = await runDistill({ ...args, config: { ...args.config, evalTeacher } });
    models[String(evalTeacher)] = r.table.map((row) => row.model);
    const grids = (await Array.fromAsync(Deno.readDir(`${tmp}/${evalTeacher}/samples`)))
      .map((e) => e.name).filter((n) => n.startsWith("teacher"));
    assertEquals(grids.length > 0, evalTeacher);
  }
  assertEquals(models.true, ["student pd 2->1", "teacher DDIM"]);
  assertEquals(models.false, ["student pd 2->1"]);
  await Deno.remove(tmp, { recursive: true });
});
