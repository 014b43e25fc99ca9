import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { runOk } from "./run.ts";

/**
 * Indexes a flat apt repository: `Packages` (dpkg-scanpackages), `Packages.gz`, and an unsigned
 * `Release` with their hashes. Without the compressed index and the Release file, apt prints an
 * error line for every compression it tries before it takes the plain `Packages`.
 */
export async function indexRepo(repo: string): Promise<void> {
  const packages = await runOk(
    ["dpkg-scanpackages", "-m", ".", "/dev/null"],
    "indexing the local repository",
    {
      cwd: repo,
    },
  );
  const files = { Packages: Buffer.from(packages), "Packages.gz": gzipSync(packages, { level: 9 }) };
  for (const [name, data] of Object.entries(files)) await fs.writeFile(path.join(repo, name), data);
  const hashes = Object.entries(files).map(
    ([name, data]) => ` ${createHash("sha256").update(data).digest("hex")} ${data.length} ${name}`,
  );
  const release = [
    "Origin: Galley",
    "Label: galley-hosts",
    "Suite: local",
    "Codename: local",
    `Date: ${new Date().toUTCString()}`,
    "Description: the local apt repository of Galley's container hosts",
    "SHA256:",
    ...hashes,
    "",
  ].join("\n");
  await fs.writeFile(path.join(repo, "Release"), release);
}
