import * as fs from "node:fs/promises";
import * as path from "node:path";
import { parseDocument } from "yaml";
import { GalleyError } from "../core/errors.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";
import { loadStack } from "./stack.ts";

/** What `cloneStack` is asked: the stack file to copy, the new file, and the new stack's name. */
export interface CloneRequest {
  from: string;
  to: string;
  /** default: the new file's name without .yaml */
  name?: string | undefined;
}

/** What a clone wrote: the files, the new name, each instance's new name, and the instances left out. */
export interface CloneResult {
  from: string;
  to: string;
  name: string;
  /** old instance name → new one */
  instances: Record<string, string>;
  /** SSH instances (they name existing machines), as `name (address)` */
  leftOut: string[];
}

/**
 * Copies a stack file under a new name with new instances (each instance name gets the new stack's
 * name as prefix), keeping the file's comments and layout. SSH instances name existing machines:
 * they are left out, and said so. The new file must not exist; it is written atomically.
 *
 * @example await cloneStack({ from: "stacks/production.yaml", to: "stacks/staging.yaml" })
 */
export async function cloneStack(request: CloneRequest): Promise<CloneResult> {
  // the text is copied, not the values: its secrets: files need not be decrypted
  const stack = await loadStack(request.from, { decrypt: false });
  const target = path.resolve(request.to);
  const name = request.name ?? path.basename(target).replace(/\.ya?ml$/, "");
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(name)) {
    throw new GalleyError("ARGS_INVALID", `"${name}" is not a stack name`, {
      hint: "lower-case letters, digits and dashes, starting with a letter: --name staging",
    });
  }
  if (name === stack.name) {
    throw new GalleyError("ARGS_INVALID", `the clone needs a name other than ${stack.name}`, {
      hint: "--name staging",
    });
  }
  const exists = () =>
    new GalleyError("ARGS_INVALID", `${target} exists already`, { hint: "name a new file with --to" });
  if (
    await fs.stat(target).then(
      () => true,
      () => false,
    )
  )
    throw exists();
  // the YAML document keeps the file's comments and layout
  const doc = parseDocument(await fs.readFile(request.from, "utf8"));
  doc.set("name", name);
  const instances: Record<string, string> = {};
  const leftOut: string[] = [];
  const kept: unknown[] = [];
  stack.instances.forEach((instance, index) => {
    if (instance.provider.type === "ssh") {
      leftOut.push(`${instance.name} (${instance.provider.address})`);
      return;
    }
    const node = doc.getIn(["instances", index], true);
    const newName = `${name}-${instance.name}`.slice(0, 31);
    instances[instance.name] = newName;
    (node as { set(key: string, value: unknown): void }).set("name", newName);
    kept.push(node);
  });
  if (stack.instances.length > 0) doc.set("instances", doc.createNode(kept));
  await fs.mkdir(path.dirname(target), { recursive: true });
  // exclusive: a file that appeared since the check above is not replaced either
  await writeFileAtomic(target, doc.toString(), { exclusive: true }).catch((error) => {
    throw (error as NodeJS.ErrnoException).code === "EEXIST" ? exists() : error;
  });
  return { from: request.from, to: target, name, instances, leftOut };
}
