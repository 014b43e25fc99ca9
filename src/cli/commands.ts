/** A command: its options (a parseArgs table with descriptions), a summary, usage, and run(). */
export interface Command {
  summary: string;
  usage: string;
  options: Record<string, { type: "string" | "boolean"; description?: string; [key: string]: unknown }>;
  // biome-ignore lint/suspicious/noExplicitAny: each command types its own parsed values
  run(values: any, positionals: string[]): Promise<number>;
}

/**
 * Every command, loaded when it runs: `galley apply` does not pay for the modules of
 * `galley cookbooks` or `galley secrets` (node:crypto alone takes 10 ms to load).
 */
export const commands: Record<string, () => Promise<Command>> = {
  apply: async () => (await import("./apply.ts")).apply("apply"),
  plan: async () => (await import("./apply.ts")).apply("plan"),
  compile: async () => (await import("./compile.ts")).compileCommand,
  attrs: async () => (await import("./attrs.ts")).attrsCommand,
  cookbooks: async () => (await import("./cookbooks.ts")).cookbooksCommand,
  bundle: async () => (await import("./bundle.ts")).bundleCommand,
  explain: async () => (await import("./explain.ts")).explain,
  secrets: async () => (await import("./secrets.ts")).secretsCommand,
  push: async () => (await import("./push.ts")).pushCommand,
  inventory: async () => (await import("./inventory.ts")).inventoryCommand,
  hosts: async () => (await import("./hosts.ts")).hostsCommand,
  stack: async () => (await import("./stack.ts")).stackCommand,
  instance: async () => (await import("./lifecycle-commands.ts")).instanceCommand,
  run: async () => (await import("./lifecycle-commands.ts")).runCommand,
  "run-recipes": async () => (await import("./lifecycle-commands.ts")).runRecipesCommand,
  history: async () => (await import("./lifecycle-commands.ts")).historyCommand,
  deploy: async () => (await import("./deploy.ts")).deployCommand,
  rollback: async () => (await import("./deploy.ts")).rollbackCommand,
  deployments: async () => (await import("./deploy.ts")).deploymentsCommand,
  deployment: async () => (await import("./deploy.ts")).deploymentCommand,
  ab: async () => (await import("./ab.ts")).abCommand,
  notifications: async () => (await import("./notifications.ts")).notificationsCommand,
  agent: async () => (await import("./agent.ts")).agentCommand,
};
