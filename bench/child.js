// One galley command as its own process (startup included), reporting its peak RSS on exit.
// Plain JavaScript like bin/galley.js: a TypeScript entry would be type-stripped before the
// compile cache is on, which loads the stripper and adds ~70 ms that `galley` itself never pays.
import { enableCompileCache } from "node:module";

enableCompileCache();
const { main } = await import("../src/cli/main.ts");

const code = await main(process.argv.slice(2));
process.stderr.write(`\n@@bench ${JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS })}\n`);
process.exitCode = code;
