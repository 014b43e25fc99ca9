import { apply } from "./apply.ts";
import { attrsCommand } from "./attrs.ts";
import { bundleCommand } from "./bundle.ts";
import { cookbooksCommand } from "./cookbooks.ts";
import { compileCommand } from "./compile.ts";
import { explain } from "./explain.ts";
import { secretsCommand } from "./secrets.ts";

/** Every command: its options (a parseArgs table with descriptions), a summary, and run(). */
export const commands = {
  apply: apply("apply"),
  plan: apply("plan"),
  compile: compileCommand,
  attrs: attrsCommand,
  cookbooks: cookbooksCommand,
  bundle: bundleCommand,
  explain,
  secrets: secretsCommand,
} as const;
