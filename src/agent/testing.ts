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
export function motdJob(
  bundle: string,
  file: string,
  text: string,
  extra: Partial<ConvergeJob> = {},
): ConvergeJob {
  return {
    bundle,
    runList: ["motd"],
    attributes: [
      { source: { level: "instance", label: "instance test" }, values: { motd: { path: file, text } } },
    ],
    mode: "apply",
    command: "galley test",
    secrets: [],
    ...extra,
  };
}

/** A CA and a server certificate it signed (for localhost and 127.0.0.1), made with openssl in `dir`. */
export async function testCertificates(dir: string): Promise<{ ca: string; key: string; cert: string }> {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const run = promisify(execFile);
  await fs.mkdir(dir, { recursive: true });
  const at = (name: string) => path.join(dir, name);
  const ed = ["-newkey", "ed25519", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ed,
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=galley test CA",
  ]);
  await run("openssl", [
    "req",
    ...ed,
    "-keyout",
    at("server.key"),
    "-out",
    at("server.csr"),
    "-subj",
    "/CN=localhost",
  ]);
  await fs.writeFile(at("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-out",
    at("server.pem"),
    "-days",
    "2",
    "-extfile",
    at("ext.cnf"),
  ]);
  const read = (name: string) => fs.readFile(at(name), "utf8");
  return { ca: await read("ca.pem"), key: await read("server.key"), cert: await read("server.pem") };
}
