import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import type { BundleValues } from "./bundle.ts";
import { writeJson } from "./output.ts";

/** `galley bundle keygen|sign|verify`: the team's signing key, signatures beside bundles, and checking them. */
export const bundleSubcommands = {
  keygen,
  sign: signFile,
  verify: verifyFile,
} as const;

/** A signer with the key read now, so a bad key stops before the bundle is written. */
export async function signCreated(keyFile: string) {
  const signing = await import("../cookbooks/signing.ts");
  const key = await signing.readSigningKey(keyFile);
  return async (bundleFile: string, id: string) => {
    const signature = signing.signBundle(id, key);
    const file = await signing.writeBundleSignature(bundleFile, signature);
    return { keyId: signature.keyId, signedAt: signature.signedAt, file };
  };
}

async function keygen(values: BundleValues, args: string[]): Promise<number> {
  expectArgs("keygen", args, 0, "keygen --key-file FILE");
  if (!values["key-file"]) {
    throw new GalleyError("USAGE", "galley bundle keygen needs --key-file FILE", {
      hint: "galley bundle keygen --key-file team.key (writes team.key, private, and team.key.pub)",
    });
  }
  const { generateSigningKey } = await import("../cookbooks/signing.ts");
  const keyFile = path.resolve(values["key-file"]);
  const { keyId, publicKeyFile } = await generateSigningKey(keyFile);
  if (values.json) writeJson({ keyId, keyFile, publicKeyFile });
  else
    process.stdout.write(
      `key ${keyId}\n  private: ${keyFile} (0600: keep it with whoever signs bundles)\n  public:  ${publicKeyFile} (give it to hosts: --trust or GALLEY_BUNDLE_TRUST)\n`,
    );
  return exitCodes.ok;
}

async function signFile(values: BundleValues, args: string[]): Promise<number> {
  expectArgs("sign", args, 1, "sign FILE --sign-key KEY");
  if (!values["sign-key"]) {
    throw new GalleyError("USAGE", "galley bundle sign needs --sign-key KEY", {
      hint: "galley bundle sign FILE --sign-key team.key (a key from galley bundle keygen)",
    });
  }
  const { inspectBundle } = await import("../cookbooks/bundle.ts");
  const sign = await signCreated(values["sign-key"]);
  const file = path.resolve(args[0]!);
  // only a sound bundle is signed: a signature vouches for what runs
  const { id } = await inspectBundle(file);
  const signed = await sign(file, id);
  if (values.json) writeJson({ id, ...signed });
  else process.stdout.write(`bundle ${id}\n  signed by ${signed.keyId}: ${signed.file}\n`);
  return exitCodes.ok;
}

async function verifyFile(values: BundleValues, args: string[]): Promise<number> {
  expectArgs("verify", args, 1, "verify FILE [--trust KEY.pub…]");
  const [{ inspectBundle }, signing] = await Promise.all([
    import("../cookbooks/bundle.ts"),
    import("../cookbooks/signing.ts"),
  ]);
  const file = path.resolve(args[0]!);
  const trustFiles = signing.trustedKeyFiles(values.trust);
  const keys = trustFiles.length > 0 ? await signing.readTrustedKeys(trustFiles) : undefined;
  const signature = await signing.readBundleSignature(file);
  let verified: { keyId: string; signedAt: string; trustedBy: string } | undefined;
  const inspected = await inspectBundle(file, {
    verify: (id) => {
      if (keys) verified = signing.verifyBundleSignature(id, signature, keys, args[0]);
    },
  });
  const claimed = (signature as { keyId?: unknown } | undefined)?.keyId;
  const status = verified
    ? `signed by ${verified.keyId} at ${verified.signedAt}, trusted (${verified.trustedBy})`
    : signature === undefined
      ? "not signed"
      : `has a signature claiming key ${String(claimed)}, not checked: no key is trusted (--trust KEY.pub)`;
  if (values.json) {
    writeJson({
      id: inspected.id,
      cookbooks: inspected.manifest.cookbooks,
      runLists: inspected.manifest.runLists,
      signature: verified ?? (signature === undefined ? null : { checked: false }),
    });
  } else {
    process.stdout.write(`bundle ${inspected.id}: verified\n  ${status}\n`);
    for (const c of inspected.manifest.cookbooks) process.stdout.write(`  ${c.name} ${c.version}\n`);
    for (const [name, items] of Object.entries(inspected.manifest.runLists))
      process.stdout.write(`  run list ${name}: ${items.join(" ")}\n`);
  }
  return exitCodes.ok;
}

function expectArgs(name: string, args: string[], count: number, usage: string): void {
  if (args.length === count) return;
  throw new GalleyError(
    "USAGE",
    `galley bundle ${name}: expected ${count === 0 ? "no FILE" : "one FILE"}, got ${args.length}`,
    { hint: `usage: galley bundle ${usage}` },
  );
}
