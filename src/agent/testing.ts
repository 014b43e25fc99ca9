import * as fs from "node:fs/promises";
import * as path from "node:path";
import { createBundle, type CreatedBundle } from "../cookbooks/bundle.ts";
import { cookbookDigest } from "../cookbooks/digest.ts";
import type { ConvergeJob } from "../fleet/agent-protocol.ts";

// Test fixtures of the agent's units and of test/agent.test.ts: a real bundle of one cookbook
// whose recipe writes one file, and a converge job for it.

/** A bundle (in `dir`) of cookbook `motd`: its default recipe writes attrs.motd.text to attrs.motd.path. */
export async function motdBundle(dir: string, text = "hello"): Promise<CreatedBundle> {
  const book = path.join(dir, "src", "motd");
  await fs.mkdir(path.join(book, "recipes"), { recursive: true });
  await fs.writeFile(path.join(book, "cookbook.yaml"), "name: motd\nversion: 1.0.0\n");
  await fs.writeFile(
    path.join(book, "recipes", "default.ts"),
    `export default (r) => r.file(r.attrs.motd.path, { content: r.attrs.motd.text + ${JSON.stringify(`\n${text}\n`)}, mode: "0644" });\n`,
  );
  const sha256 = await cookbookDigest(book);
  const lock = {
    lockfileVersion: 1,
    sourcesSha256: "0".repeat(64),
    cookbooks: { motd: { version: "1.0.0", source: { path: "./motd" }, sha256, depends: {} } },
  };
  return createBundle(
    {
      cookbooks: [{ name: "motd", version: "1.0.0", dir: book, sha256 }],
      lock: `${JSON.stringify(lock, null, 2)}\n`,
      runLists: { default: ["motd"] },
    },
    { dir: path.join(dir, "out") },
  );
}

/** A job converging `bundle` so that `file` holds `text`. */
export function motdJob(bundle: string, file: string, text: string, extra: Partial<ConvergeJob> = {}): ConvergeJob {
  return {
    bundle,
    runList: ["motd"],
    attributes: [{ source: { level: "instance", label: "instance test" }, values: { motd: { path: file, text } } }],
    mode: "apply",
    command: "galley test",
    secrets: [],
    ...extra,
  };
}
