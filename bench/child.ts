// One galley command as its own process (startup included), reporting its peak RSS on exit.
import { enableCompileCache } from "node:module";

enableCompileCache();
const { main } = await import("../src/cli/main.ts");

const code = await main(process.argv.slice(2));
process.stderr.write(`\n@@bench ${JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS })}\n`);
process.exitCode = code;
