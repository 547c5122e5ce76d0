/**
 * The UNets the benches time by name: a preset of `UNET_PRESETS` (`tiny`, `mnist`, ...) or
 * `cifar10`, the reference's CIFAR-10 UNet of configs/cifar10_teacher.json (35.7M parameters).
 */
import { UNET_PRESETS, type UNetConfig } from "../lib/models/unet.ts";
import { readRunConfig, teacherModelConfig } from "../lib/train/run_config.ts";
import { UsageError } from "../lib/cli/args.ts";

/** The config names {@link benchUNet} knows. */
export const BENCH_UNETS = [...Object.keys(UNET_PRESETS), "cifar10"];

/** The UNet config called `name` (a fresh copy); throws naming `flag` for an unknown name. */
export async function benchUNet(name: string, flag: string): Promise<UNetConfig> {
  if (name in UNET_PRESETS) {
    return structuredClone(UNET_PRESETS[name as keyof typeof UNET_PRESETS]) as UNetConfig;
  }
  if (name !== "cifar10") {
    throw new UsageError(
      `${flag}: unknown config ${name} (expected one of ${BENCH_UNETS.join(", ")})`,
    );
  }
  const c = await readRunConfig(
    new URL("../configs/cifar10_teacher.json", import.meta.url).pathname,
  );
  if (c.kind !== "teacher") throw new Error("configs/cifar10_teacher.json is not a teacher run");
  return teacherModelConfig(c);
}
