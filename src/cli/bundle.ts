import * as fs from "node:fs/promises";
import * as path from "node:path";
import { exitCodes } from "../core/errors.ts";
import { bundleSubcommands, signCreated } from "./bundle-trust.ts";
import { writeJson } from "./output.ts";

const options = {
  kitchen: {
    type: "string",
    description:
      "the kitchen folder, holding cookbooks.yaml and cookbooks.lock (default: the current folder)",
  },
  out: {
    type: "string",
    description: "the bundle file to write (default: <id>.tgz in the current folder)",
  },
  "sign-key": {
    type: "string",
    description:
      "sign the bundle with this private key (galley bundle keygen): writes <bundle>.sig beside it",
  },
  "key-file": {
    type: "string",
    description: "keygen: where to write the new private key (its public key goes to FILE.pub)",
  },
  trust: {
    type: "string",
    multiple: true,
    description:
      "verify: the bundle must be signed by this public key; repeatable; adds to $GALLEY_BUNDLE_TRUST",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

/** The parsed options of `galley bundle` and its subcommands. */
export interface BundleValues {
  kitchen?: string;
  out?: string;
  "sign-key"?: string;
  "key-file"?: string;
  trust?: string[];
  json: boolean;
}

/** `galley bundle`: the locked cookbooks and their lock in one content-addressed archive; keygen, sign, verify. */
export const bundleCommand = {
  summary: "pack the locked cookbooks and cookbooks.lock into one content-addressed archive",
  usage:
    "[RUNLIST…] [--out FILE] [--sign-key KEY] [--kitchen DIR] [--json] | keygen --key-file FILE | sign FILE --sign-key KEY | verify FILE [--trust KEY.pub…]   (a run list given is recorded as the bundle's default; a cookbook named keygen, sign or verify is written keygen::default)",
  options,
  async run(values: BundleValues, positionals: string[]): Promise<number> {
    const subcommand = bundleSubcommands[positionals[0] as keyof typeof bundleSubcommands];
    if (subcommand) return subcommand(values, positionals.slice(1));
    const root = path.resolve(values.kitchen ?? ".");
    // the archive code loads only for this command
    const [{ lockedKitchen, cacheDir }, { lockedCookbookDir, lockFileName }, { createBundle }] =
      await Promise.all([
        import("../cookbooks/kitchen.ts"),
        import("../cookbooks/lock.ts"),
        import("../cookbooks/bundle.ts"),
      ]);
    const { lock } = await lockedKitchen(root);
    const lockText = await fs.readFile(path.join(root, lockFileName), "utf8");
    const cache = cacheDir();
    const cookbooks = Object.entries(lock.cookbooks).map(([name, entry]) => ({
      name,
      version: entry.version,
      sha256: entry.sha256,
      dir: lockedCookbookDir(root, cache, name, entry),
    }));
    // a missing or wrong signing key stops before a bundle is written
    const sign = values["sign-key"] ? await signCreated(values["sign-key"]) : undefined;
    const created = await createBundle(
      { cookbooks, lock: lockText, ...(positionals.length ? { runLists: { default: positionals } } : {}) },
      values.out ? { file: path.resolve(values.out) } : { dir: process.cwd() },
    );
    const signed = sign ? await sign(created.file, created.id) : undefined;
    if (values.json)
      writeJson({
        ...created,
        cookbooks: cookbooks.map(({ dir: _dir, ...c }) => c),
        ...(signed ? { signature: signed } : {}),
      });
    else {
      process.stdout.write(`bundle ${created.id}\n  ${created.file} (${created.bytes} bytes)\n`);
      if (signed) process.stdout.write(`  signed by ${signed.keyId}: ${signed.file}\n`);
      for (const c of cookbooks) process.stdout.write(`  ${c.name} ${c.version}\n`);
    }
    return exitCodes.ok;
  },
};
