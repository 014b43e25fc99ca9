import type { Facts } from "../core/host.ts";

/** The distribution fields of Facts from the text of /etc/os-release. */
export function parseOsRelease(text: string): Omit<Facts["os"], "kernel" | "kernelRelease"> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match) values.set(match[1]!, match[2]!.replace(/^"(.*)"$/, "$1"));
  }
  const id = values.get("ID") ?? "unknown";
  const like = (values.get("ID_LIKE") ?? "").split(/\s+/).filter(Boolean);
  return {
    id,
    family: like[0] ?? id,
    version: values.get("VERSION_ID") ?? "",
    codename: values.get("VERSION_CODENAME") ?? "",
    prettyName: values.get("PRETTY_NAME") ?? id,
  };
}
