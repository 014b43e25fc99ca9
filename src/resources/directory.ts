import * as path from "node:path";
import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import { defineResourceType, described, modeSchema, optional, pathSchema } from "../core/resource.ts";
import { chmod, chown, mkdir, remove } from "../core/fsops.ts";
import { diffAttributes, pathRequires } from "./filestate.ts";

const schema = v.strictObject({
  path: pathSchema("absolute path of the directory (defaults to the resource name)"),
  mode: v.optional(modeSchema()),
  owner: v.optional(described(v.string(), "user that owns the directory")),
  group: v.optional(described(v.string(), "group that owns the directory")),
  recursive: v.optional(
    described(
      v.boolean(),
      "create: also create missing parents (with default mode and owner); delete: remove the contents too",
    ),
    false,
  ),
});

interface State {
  type: "file" | "directory" | "symlink" | "other";
  mode: number;
  owner: string;
  group: string;
}

/** A directory: existence, mode, owner and group. */
export const directory = defineResourceType<typeof schema, State>({
  type: "directory",
  concurrent: true,
  description: "A directory: its existence, mode, owner and group.",
  actions: ["create", "delete"],
  schema,
  nameProperty: "path",

  key: (props) => props.path,

  autoRequires: pathRequires,

  async read(host, props) {
    const stat = await host.stat(props.path);
    return stat && { type: stat.type, mode: stat.mode, owner: stat.owner, group: stat.group };
  },

  diff(current, desired, action) {
    if (action === "delete") return current ? [{ property: "ensure", from: current.type, to: "absent" }] : [];
    if (!current)
      return [{ property: "ensure", from: "absent", to: "directory" }, ...diffAttributes(undefined, desired)];
    if (current.type !== "directory") return [{ property: "type", from: current.type, to: "directory" }];
    return diffAttributes(current, desired);
  },

  async apply(host, desired, action, current) {
    if (action === "delete") {
      if (current?.type === "directory" && !desired.recursive) {
        const result = await host.exec(["rmdir", "--", desired.path]);
        if (result.exitCode !== 0) {
          throw new GalleyError("APPLY_FAILED", `cannot delete ${desired.path}: ${result.stderr.trim()}`, {
            hint: "set recursive: true to delete a directory with its contents",
          });
        }
        return;
      }
      return remove(host, desired.path, { recursive: desired.recursive });
    }
    if (current && current.type !== "directory") {
      throw new GalleyError("APPLY_FAILED", `${desired.path} is a ${current.type}, not a directory`, {
        hint: "delete it first with a file or link resource, or choose another path",
      });
    }
    if (!current) {
      if (!desired.recursive && !(await host.stat(path.dirname(desired.path)))) {
        throw new GalleyError("APPLY_FAILED", `parent of ${desired.path} does not exist`, {
          hint: "set recursive: true, or declare the parent directory first",
        });
      }
      return mkdir(host, desired.path, {
        recursive: desired.recursive,
        ...optional("mode", desired.mode),
        ...optional("owner", desired.owner),
        ...optional("group", desired.group),
      });
    }
    if (desired.mode !== undefined && current.mode !== desired.mode)
      await chmod(host, desired.path, desired.mode);
    await chown(
      host,
      desired.path,
      desired.owner !== current.owner ? desired.owner : undefined,
      desired.group !== current.group ? desired.group : undefined,
    );
  },
});
