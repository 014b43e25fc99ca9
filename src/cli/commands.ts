import { apply } from "./apply.ts";
import { compileCommand } from "./compile.ts";
import { explain } from "./explain.ts";

/** Every command: its options (a parseArgs table with descriptions), a summary, and run(). */
export const commands = {
  apply: apply("apply"),
  plan: apply("plan"),
  compile: compileCommand,
  explain,
} as const;
