// Fetches one git mirror into a cache, as a separate Galley process would:
//   node fetch-mirror.ts app KITCHEN URL      → prepares the app "web" from URL (prints its revision)
//   node fetch-mirror.ts cookbook CACHE URL   → updates the cookbook mirror of URL (prints its main commit)
// A last argument START (epoch ms) makes it begin then: processes started together fetch at once.
import { gitSession, mirror, revParse } from "../../src/cookbooks/git.ts";
import { prepareApps } from "../../src/lifecycle/apps.ts";
import { appContext } from "./app-context.ts";

const [kind, dir, url, start] = process.argv.slice(2) as [string, string, string, string?];
if (start) await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(start) - Date.now())));
if (kind === "app") {
  const { context, app } = appContext(dir, url);
  const [prepared] = await prepareApps(context, [app]);
  process.stdout.write(`${prepared!.revision}\n`);
} else {
  const origin = { name: "web", source: { git: url }, url, where: "cookbooks.yaml:1" };
  const mirrorDir = await mirror(gitSession(dir), origin);
  process.stdout.write(`${await revParse(mirrorDir, "refs/heads/main")}\n`);
}
