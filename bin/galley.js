#!/usr/bin/env node
// Galley runs its TypeScript sources directly, which needs Node.js 24 or later.
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(
    `error[NODE_VERSION]: Galley needs Node.js 24 or later; this is ${process.version} (${process.execPath})\n` +
      "hint: run it through npm (npx galley …), which uses the Node.js 24 pinned in package.json, or install Node.js 24\n",
  );
  process.exit(2);
}
// cache compiled (and type-stripped) modules on disk: startup drops from ~0.6 s to ~0.2 s
const { enableCompileCache } = await import("node:module");
enableCompileCache?.();
const { main } = await import("../src/cli/main.ts");
// the commands of the server (and the agent): src/cli may not import them (same layer), so the
// entry point, above every layer, registers them
const { commands } = await import("../src/cli/commands.ts");
commands.server = async () => (await import("../src/server/commands.ts")).serverCommand;
commands.token = async () => (await import("../src/server/commands.ts")).tokenCommand;
commands.user = async () => (await import("../src/server/commands.ts")).userCommand;
// `galley agent enroll|run` join `galley agent`'s table when it loads (src/agent/commands.ts)
const loadAgent = commands.agent;
commands.agent = async () => {
  const command = await loadAgent();
  const { agentSubcommands } = await import("../src/cli/agent.ts");
  agentSubcommands.enroll = async (values) => (await import("../src/agent/commands.ts")).enroll(values);
  agentSubcommands.run = async (values) => (await import("../src/agent/commands.ts")).run(values);
  return command;
};
process.exitCode = await main(process.argv.slice(2));
// a finished command exits: a timer or socket a recipe left running must not hold it, nor fail it later
process.stdout.write("", () => process.stderr.write("", () => process.exit()));
