import * as path from "node:path";
import type { SecretOptions } from "../cookbooks/cookbook.ts";
import { waitMs as waitSeconds } from "../deploy/ask.ts";

/** Options shared by the commands that compile a run list. */
export const runListOptions = {
  cookbooks: {
    type: "string",
    default: "cookbooks",
    description: "the cookbooks folder (default ./cookbooks)",
  },
  attrs: {
    type: "string",
    multiple: true,
    description: "an attributes file (JSON or YAML) merged over cookbook defaults; repeatable",
  },
  "key-file": {
    type: "string",
    description: "the key of encrypted attribute files (default: $GALLEY_SECRET_KEY_FILE)",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

/** Options of the commands that converge (apply, plan, push). */
export const convergeOptions = {
  "no-diff": { type: "boolean", default: false, description: "do not print content diffs" },
  bundle: {
    type: "string",
    description: "converge from this bundle (galley bundle) instead of the kitchen's cookbooks",
  },
  trust: {
    type: "string",
    multiple: true,
    description:
      "run the bundle only if FILE.sig is signed by this public key (galley bundle keygen); repeatable; adds to $GALLEY_BUNDLE_TRUST",
  },
} as const;

/** The option of commands that take each host's run lock (apply, push, lifecycle events). */
export const runLockOptions = {
  wait: {
    type: "string",
    description:
      "seconds to wait for a run in progress on a host before giving up (default 600; 0: fail at once)",
  },
} as const;

/** How long to wait for a host's run lock: --wait SECONDS, 600 s by default. */
export function waitMs(values: { wait?: string | undefined }): number {
  return waitSeconds(values.wait);
}

export interface RunListValues {
  cookbooks: string;
  attrs?: string[];
  "key-file"?: string;
  json: boolean;
}

/** How to decrypt encrypted attribute files: the key is read only when one is met. */
export function secretOptions(values: RunListValues): SecretOptions {
  return {
    key: async () => {
      const { readKey } = await import("../secrets/vault.ts");
      return readKey({ ...(values["key-file"] ? { keyFile: values["key-file"] } : {}), env: process.env });
    },
  };
}

export function cookbooksDir(values: RunListValues): string {
  return path.resolve(values.cookbooks);
}
