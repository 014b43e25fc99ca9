import { existsSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import type { AgentLink, AgentTarget } from "../fleet/agent-protocol.ts";
import type { StackFile } from "../stacks/schema.ts";
import { loadStack } from "../stacks/stack.ts";
import { checkStackRecipes } from "./stack-recipes.ts";
import { openSqliteStore, storeFile } from "../store/sqlite.ts";
import type { Store } from "../store/store.ts";

/** A stack file opened for lifecycle work: where its kitchen, cookbooks and store are. */
export interface StackContext {
  file: string;
  stack: StackFile;
  /** the kitchen: the folder holding stacks/ (or the stack file's folder); .galley/ lives here */
  kitchen: string;
  /** the cookbooks folder recipes come from (a kitchen with cookbooks.yaml: its locked cookbooks) */
  cookbooksDir: string;
  store: Store;
  /** the server's agents: how instances with `transport: agent` are reached (set by galley server; none: they cannot be) */
  agents?: AgentLink | undefined;
  /** a one-time enrollment token for an agent instance, and the URL it enrolls with (set by galley server) */
  agentEnrollment?: ((target: AgentTarget) => Promise<{ serverUrl: string; token: string }>) | undefined;
}

/** How to open a stack file. */
export interface StackOpenOptions {
  /** false: the layers' recipes need not exist (stopping, reading history) */
  checkRecipes?: boolean;
  /** the key of the stack's `secrets:` files (--key-file); else $GALLEY_SECRET_KEY_FILE, else the kitchen's .galley/secret.key */
  keyFile?: string | undefined;
  /** false: the `secrets:` files are not decrypted (commands that only read the store) */
  decrypt?: boolean;
}

/**
 * Opens a stack file: validates it, finds its kitchen and cookbooks, opens the kitchen's store.
 * Instance names are the hosts' names, so two stacks of one kitchen may not share one. Recipes the
 * layers name must exist in the kitchen, unless `checkRecipes` is false (stopping, reading history).
 * Its encrypted `secrets:` files are decrypted with `keyFile` (or $GALLEY_SECRET_KEY_FILE, or the
 * kitchen's .galley/secret.key), their values registered as secrets of the current run.
 */
export async function openStack(file: string, options: StackOpenOptions = {}): Promise<StackContext> {
  const resolved = path.resolve(file);
  const dir = path.dirname(resolved);
  const kitchen = path.basename(dir) === "stacks" ? path.dirname(dir) : dir;
  const stack = await loadStack(resolved, {
    decrypt: options.decrypt,
    // read only when the stack names encrypted files
    key: async () => {
      const { readKey } = await import("../secrets/vault.ts");
      return readKey({ ...stackKeyFile(kitchen, options.keyFile), env: process.env });
    },
  });
  const store = openSqliteStore(storeFile(kitchen));
  try {
    for (const other of await store.listStacks()) {
      if (other.name === stack.name) continue;
      const taken = (await store.listInstances(other.name)).map((i) => i.name);
      const clash = stack.instances.find((instance) => taken.includes(instance.name));
      if (clash) {
        throw new GalleyError(
          "STACK_INVALID",
          `${resolved}: instance ${clash.name} is also an instance of stack ${other.name} in this kitchen`,
          {
            hint: "instance names are host names: give each stack's instances their own (galley stack clone renames them)",
          },
        );
      }
    }
  } catch (error) {
    await store.close();
    throw error;
  }
  const dirOfCookbooks = cookbooksDir(resolved, stack);
  try {
    if (options.checkRecipes !== false) await checkStackRecipes(resolved, stack, dirOfCookbooks);
  } catch (error) {
    await store.close();
    throw error;
  }
  return { file: resolved, stack, kitchen, cookbooksDir: dirOfCookbooks, store };
}

/** The kitchen's own key file, used when neither --key-file nor $GALLEY_SECRET_KEY_FILE names one. */
export function kitchenKeyFile(kitchen: string): string {
  return path.join(kitchen, ".galley", "secret.key");
}

// --key-file, else $GALLEY_SECRET_KEY_FILE (readKey), else the kitchen's .galley/secret.key if there is one
function stackKeyFile(kitchen: string, keyFile: string | undefined): { keyFile?: string } {
  if (keyFile) return { keyFile };
  if (process.env.GALLEY_SECRET_KEY_FILE) return {};
  const own = kitchenKeyFile(kitchen);
  return existsSync(own) ? { keyFile: own } : {};
}

/** The stack's cookbooks folder: `cookbooks:` names a cookbooks.yaml (its kitchen's cookbooks/, locked) or a cookbooks folder. */
export function cookbooksDir(file: string, stack: StackFile): string {
  const ref = path.resolve(path.dirname(file), stack.cookbooks.replace(/^~(?=\/)/, os.homedir()));
  if (/\.ya?ml$/.test(ref)) {
    const dir = path.join(path.dirname(ref), "cookbooks");
    if (existsSync(ref) || existsSync(dir)) return dir;
    throw new GalleyError("STACK_INVALID", `${file}: cookbooks: ${stack.cookbooks} does not exist (${ref})`, {
      hint: "name the kitchen's cookbooks.yaml or a cookbooks folder, relative to the stack file",
    });
  }
  if (!existsSync(ref)) {
    throw new GalleyError("STACK_INVALID", `${file}: cookbooks: no folder ${ref}`, {
      hint: "name the kitchen's cookbooks.yaml or a cookbooks folder, relative to the stack file",
    });
  }
  return ref;
}
