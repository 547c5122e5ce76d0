/**
 * The `--backend` flag every command shares (see `selectBackend` in lib/tfjs/backend.ts).
 * @module
 */
import type { FlagSpec } from "./args.ts";
import { BACKEND_PREFERENCES } from "../tfjs/backend.ts";

/** `--backend auto|webgpu|cpu|wasm`; absent: `$RDD_BACKEND`, else auto. */
export const BACKEND_FLAG = {
  type: "string",
  choices: BACKEND_PREFERENCES,
  description: "tfjs backend (default: $RDD_BACKEND, else auto)",
} as const satisfies FlagSpec;
