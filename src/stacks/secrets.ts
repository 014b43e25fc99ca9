import * as path from "node:path";
import { type Attributes, deepMerge, isPlainObject } from "../core/attributes.ts";
import { GalleyError, isGalleyError } from "../core/errors.ts";
import { redacted } from "../core/report.ts";
import { registerSecrets, secretValues } from "../core/secrets.ts";
import { type StackFile, secretRefPrefix } from "./schema.ts";

// A stack's secrets: its encrypted attribute files (`secrets:`) merged over its attributes, and the
// environment values that name an attribute path (`{ secret: db.password }`) filled in. Every value
// either brings is registered as a secret of the run, so no output, report or row shows it.

/** Where a stack's encrypted files are decrypted with: the key, read only when a file is met. */
export interface StackSecretOptions {
  key?: (() => Promise<Buffer>) | undefined;
  /** false: the files are not decrypted, secret values read "(sensitive)" (for commands that only read the store) */
  decrypt?: boolean | undefined;
}

/** Where a field sits in the stack file (":12"), for messages; "" when unknown. */
export type LineOf = (path: (string | number)[]) => string;

/**
 * Decrypts the stack's `secrets:` files (relative to `file`), merges them over its attributes in
 * order, registers every value of them as a secret of the current run, and replaces each
 * `{ secret: … }` environment value with the attribute's value (registered too). Changes `stack`.
 */
export async function resolveStackSecrets(
  file: string,
  stack: StackFile,
  options: StackSecretOptions,
  at: LineOf,
): Promise<void> {
  const decrypt = options.decrypt !== false;
  for (const [index, name] of decrypt ? stack.secrets.entries() : []) {
    if (!options.key) {
      throw new GalleyError(
        "SECRET_INVALID",
        `${file}${at(["secrets", index])}: secrets: ${name} is encrypted, and no key was given to decrypt it`,
        { hint: "pass --key-file FILE, or set GALLEY_SECRET_KEY_FILE=FILE" },
      );
    }
    // node:crypto and the vault load only for a stack that has secrets
    const { loadSecretAttributes } = await import("../secrets/vault.ts");
    const where = `${file}${at(["secrets", index])}: secrets: ${name}`;
    const key = await options.key().catch((error: unknown) => {
      // the key's own error (none given, too open…), said of the stack file's line that needs it
      if (!isGalleyError(error)) throw error;
      throw new GalleyError(
        error.code,
        `${where}: ${error.message}`,
        error.hint === undefined ? {} : { hint: error.hint },
      );
    });
    const values = await loadSecretAttributes(path.resolve(path.dirname(file), name), key);
    registerSecrets(secretValues(values));
    stack.attributes = deepMerge(stack.attributes as Attributes, values as Attributes);
  }
  const fill = (env: Record<string, string>, where: (string | number)[]) => {
    for (const [key, value] of Object.entries(env)) {
      if (!value.startsWith(secretRefPrefix)) continue;
      const ref = value.slice(secretRefPrefix.length);
      if (!decrypt) {
        env[key] = redacted;
        continue;
      }
      const found = lookup(stack.attributes, ref);
      if (typeof found !== "string" && typeof found !== "number") {
        const field = [...where, key].join(".");
        throw new GalleyError(
          "STACK_INVALID",
          `${file}${at([...where, key])}: ${field}: the secret ${ref} is ${found === undefined ? "not an attribute of the stack" : "not a string or number"}`,
          {
            hint: `name a string in the stack's attributes or its secrets: files (${stack.secrets.join(", ") || "none"}), e.g. { secret: db.password }`,
          },
        );
      }
      env[key] = String(found);
      registerSecrets([env[key]]);
    }
  };
  for (const [i, layer] of stack.layers.entries()) fill(layer.environment, ["layers", i, "environment"]);
  for (const [i, app] of stack.apps.entries()) {
    fill(app.environment, ["apps", i, "environment"]);
    const service = app.release?.service;
    if (service) fill(service.environment, ["apps", i, "release", "service", "environment"]);
  }
}

function lookup(attributes: Record<string, unknown>, ref: string): unknown {
  let value: unknown = attributes;
  for (const part of ref.split(".")) {
    if (!isPlainObject(value)) return undefined;
    value = Object.hasOwn(value, part) ? value[part] : undefined;
  }
  return value;
}
