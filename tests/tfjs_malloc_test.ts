import { assertEquals } from "@std/assert";
import { tuneMalloc } from "../lib/tfjs/malloc.ts";

Deno.test("tuneMalloc: glibc's mallopt accepts both settings on Linux", () => {
  assertEquals(tuneMalloc(), Deno.build.os === "linux");
});
