import * as fs from "node:fs/promises";
import * as path from "node:path";
import { run } from "./run.ts";

/** One `deb` source of the machine's apt: where the image's packages are downloaded from. */
export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
  /** the keyring that signs it, when the source names one */
  signedBy?: string;
}

/**
 * The machine's apt sources for one Debian release (codename, e.g. "bookworm"): the mirrors the
 * machine's own apt uses, so building works wherever the machine's apt works. Falls back to
 * deb.debian.org when the machine has no source for that release (e.g. an Ubuntu machine).
 */
export async function releaseSources(codename: string, etc = "/etc/apt"): Promise<AptSource[]> {
  const all: AptSource[] = [];
  const list = await fs.readFile(path.join(etc, "sources.list"), "utf8").catch(() => "");
  all.push(...parseOneLine(list));
  const names = await fs.readdir(path.join(etc, "sources.list.d")).catch(() => [] as string[]);
  for (const name of names.sort()) {
    const text = await fs.readFile(path.join(etc, "sources.list.d", name), "utf8").catch(() => "");
    if (name.endsWith(".list")) all.push(...parseOneLine(text));
    else if (name.endsWith(".sources")) all.push(...parseDeb822(text));
  }
  const wanted = all.filter((source) => source.suite === codename || source.suite.startsWith(`${codename}-`));
  return wanted.length > 0 ? dedupe(wanted) : defaultSources(codename);
}

/** Debian's own mirrors for a release. */
export function defaultSources(codename: string): AptSource[] {
  const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
  const main = { components: ["main"], signedBy: keyring };
  return [
    { uri: "http://deb.debian.org/debian", suite: codename, ...main },
    { uri: "http://deb.debian.org/debian", suite: `${codename}-updates`, ...main },
    { uri: "http://deb.debian.org/debian-security", suite: `${codename}-security`, ...main },
  ];
}

/** Sources as one-line `deb` entries (what apt and mmdebstrap both read). */
export function formatOneLine(sources: AptSource[]): string[] {
  return sources.map((s) => {
    const options = s.signedBy ? ` [signed-by=${s.signedBy}]` : "";
    return `deb${options} ${s.uri} ${s.suite} ${s.components.join(" ")}`;
  });
}

/** Parses one-line sources.list text; only `deb` lines (not deb-src). */
export function parseOneLine(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    const match = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!match) continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(match[1] ?? "")?.[1];
    sources.push({
      uri: match[2]!,
      suite: match[3]!,
      components: match[4]!.split(/\s+/).filter(Boolean),
      ...(signedBy ? { signedBy } : {}),
    });
  }
  return sources;
}

/** Parses deb822 `.sources` text: stanzas with Types, URIs, Suites, Components, Signed-By, Enabled. */
export function parseDeb822(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split("\n")) {
      if (raw.startsWith("#")) continue;
      if (/^\s/.test(raw) && last) {
        // a continuation line (an inline Signed-By key block is not a file we can name)
        fields.set(last, `${fields.get(last)} ${raw.trim()}`);
        continue;
      }
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (!match) continue;
      last = match[1]!.toLowerCase();
      fields.set(last, match[2]!.trim());
    }
    const words = (name: string) => (fields.get(name) ?? "").split(/\s+/).filter(Boolean);
    if (!words("types").includes("deb") || fields.get("enabled")?.toLowerCase() === "no") continue;
    const signedBy = words("signed-by");
    for (const uri of words("uris")) {
      for (const suite of words("suites")) {
        sources.push({
          uri,
          suite,
          components: words("components"),
          ...(signedBy.length === 1 && signedBy[0]!.startsWith("/") ? { signedBy: signedBy[0]! } : {}),
        });
      }
    }
  }
  return sources;
}

function dedupe(sources: AptSource[]): AptSource[] {
  const seen = new Set<string>();
  return sources.filter((s) => {
    const key = `${s.uri} ${s.suite}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const passedOptions = /^Acquire::(https?|ftp)::Proxy|^Acquire::(Check-Valid-Until|Check-Date|Retries)\b/;

/**
 * The machine's apt settings that decide whether downloads work (proxies, date checks of snapshot
 * mirrors), as `Name "value";` lines from `apt-config dump`: mmdebstrap runs apt with its own
 * configuration, so it must be told.
 */
export async function aptNetworkOptions(): Promise<string[]> {
  const result = await run(["apt-config", "dump"]);
  if (result.code !== 0) return [];
  return result.stdout.split("\n").filter((line) => passedOptions.test(line) && /"[^"]+"/.test(line));
}
