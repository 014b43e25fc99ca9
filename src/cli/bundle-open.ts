import * as path from "node:path";
import type { PreparedCookbooks } from "../cookbooks/prepared.ts";
import { GalleyError } from "../core/errors.ts";

/** `--bundle FILE` opened with the run list given (else its default) and `--trust`; undefined without --bundle. */
export async function bundleOf(
  values: { bundle?: string | undefined; trust?: string[] | undefined },
  items: string[],
) {
  if (values.bundle) return openBundleCookbooks(values.bundle, { items, trust: values.trust ?? [] });
  if (values.trust?.length) {
    throw new GalleyError("USAGE", "--trust checks a bundle's signature: it needs --bundle FILE", {
      hint: "galley apply --bundle FILE --trust KEY.pub (or drop --trust)",
    });
  }
  return undefined;
}

/**
 * The cookbooks of a bundle, verified (and, when trust is configured by `trust` files or
 * GALLEY_BUNDLE_TRUST, its signature checked first) and extracted into the cache, with the run list:
 * `items` when given, else the bundle's default. Every item must name a cookbook of the bundle.
 */
export async function openBundleCookbooks(
  file: string,
  options: { items?: string[]; trust?: string[] } = {},
) {
  const [{ openBundle, runListItemsProblem }, { cacheDir }, { loadCookbooks }, signing] = await Promise.all([
    import("../cookbooks/bundle.ts"),
    import("../cookbooks/git.ts"),
    import("../cookbooks/cookbook.ts"),
    import("../cookbooks/signing.ts"),
  ]);
  const resolved = path.resolve(file);
  const trustFiles = signing.trustedKeyFiles(options.trust);
  const keys = trustFiles.length > 0 ? await signing.readTrustedKeys(trustFiles) : undefined;
  const signature = keys ? await signing.readBundleSignature(resolved) : undefined;
  let signed: { keyId: string; signedAt: string } | undefined;
  // the signature is checked against the id of the very bytes opened, before anything is unpacked
  const verify = (id: string) => {
    if (keys) signed = signing.verifyBundleSignature(id, signature, keys, file);
  };
  const opened = await openBundle(resolved, cacheDir(), { verify });
  const runList = options.items?.length ? options.items : (opened.manifest.runLists.default ?? []);
  const names = new Set(opened.manifest.cookbooks.map((c) => c.name));
  const problem = runListItemsProblem(runList, names);
  if (problem) {
    throw new GalleyError("ARGS_INVALID", `--bundle ${file}: run list ${problem}`, {
      hint: `name recipes of the bundle's cookbooks (${[...names].join(", ")}), or run a recipe file without --bundle`,
    });
  }
  return { id: opened.id, cookbooks: await loadCookbooks(opened.cookbooksDir), runList, signed };
}

/** An opened bundle as a run's prepared set: its id, its cookbooks and the run list given. */
export function preparedOf(bundle: Awaited<ReturnType<typeof openBundleCookbooks>>): PreparedCookbooks {
  return {
    id: bundle.id,
    kind: "bundle",
    cookbooks: bundle.cookbooks,
    runLists: { default: bundle.runList },
  };
}
