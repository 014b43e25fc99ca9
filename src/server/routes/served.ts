import * as fs from "node:fs/promises";
import * as path from "node:path";
import { parse } from "yaml";
import { isEncrypted } from "../../secrets/envelope.ts";

// Which files of <kitchen>/stacks/ are stacks: every NAME.yaml with a stack's name, except the
// attribute files stacks keep beside them: an encrypted file (galley secrets), and any file a stack
// names in its `secrets:` list (encrypted or not yet). Such a file is no stack to list, and its
// content must not be quoted in an "invalid stack" message.

const namePattern = /^[a-z][a-z0-9-]{0,62}$/;

/** The names of the stacks the server serves, sorted: stacks/NAME.yaml, without the stacks' attribute files. */
export async function servedStackNames(kitchen: string): Promise<string[]> {
  const dir = path.join(kitchen, "stacks");
  const files = await fs.readdir(dir).catch(() => [] as string[]);
  const candidates = files
    .filter((f) => f.endsWith(".yaml") && namePattern.test(f.slice(0, -".yaml".length)))
    .sort();
  const texts = new Map<string, string>();
  await Promise.all(
    candidates.map(async (f) => {
      const text = await fs.readFile(path.join(dir, f), "utf8").catch(() => undefined);
      if (text !== undefined) texts.set(f, text);
    }),
  );
  const named = new Set<string>();
  for (const [, text] of texts) {
    if (isEncrypted(text)) continue;
    for (const file of secretsOf(text)) named.add(path.resolve(dir, file));
  }
  return candidates
    .filter((f) => {
      const text = texts.get(f);
      return text !== undefined && !isEncrypted(text) && !named.has(path.resolve(dir, f));
    })
    .map((f) => f.slice(0, -".yaml".length));
}

// the `secrets:` list of a stack file's text (none when it does not parse)
function secretsOf(text: string): string[] {
  let doc: unknown;
  try {
    doc = parse(text, { logLevel: "silent" });
  } catch {
    return [];
  }
  const list = (doc as { secrets?: unknown } | null)?.secrets;
  return Array.isArray(list) ? list.filter((s): s is string => typeof s === "string") : [];
}
