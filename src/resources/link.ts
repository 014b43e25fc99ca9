import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import { defineResourceType, described, pathSchema } from "../core/resource.ts";
import { chown, remove, symlink } from "../core/fsops.ts";

const schema = v.strictObject({
  path: pathSchema("absolute path of the link (defaults to the resource name)"),
  to: v.optional(
    described(v.pipe(v.string(), v.minLength(1)), "where the link points (required for create)"),
  ),
  owner: v.optional(described(v.string(), "user that owns the link itself")),
  group: v.optional(described(v.string(), "group that owns the link itself")),
});

interface State {
  type: "file" | "directory" | "symlink" | "other";
  target: string | undefined;
  owner: string;
  group: string;
}

/** A symbolic link. A regular file in its place is replaced; a directory is an error. */
export const link = defineResourceType<typeof schema, State>({
  type: "link",
  concurrent: true,
  description:
    "A symbolic link: where it points, and its owner and group. A regular file in its place is replaced.",
  actions: ["create", "delete"],
  schema,
  nameProperty: "path",

  key: (props) => props.path,

  autoRequires: (props) => [
    { path: props.path },
    ...(props.to?.startsWith("/") ? [{ path: props.to }] : []),
    ...(props.owner ? [{ user: props.owner }] : []),
    ...(props.group ? [{ group: props.group }] : []),
  ],

  async read(host, props) {
    const stat = await host.stat(props.path);
    return stat && { type: stat.type, target: stat.target, owner: stat.owner, group: stat.group };
  },

  diff(current, desired, action) {
    if (action === "delete")
      return current?.type === "symlink" ? [{ property: "ensure", from: "link", to: "absent" }] : [];
    if (desired.to === undefined) return [{ property: "to", to: "(missing)" }];
    if (!current) return [{ property: "ensure", from: "absent", to: `link to ${desired.to}` }];
    if (current.type !== "symlink") return [{ property: "type", from: current.type, to: "link" }];
    const changes = [];
    if (current.target !== desired.to) changes.push({ property: "to", from: current.target, to: desired.to });
    if (desired.owner !== undefined && current.owner !== desired.owner) {
      changes.push({ property: "owner", from: current.owner, to: desired.owner });
    }
    if (desired.group !== undefined && current.group !== desired.group) {
      changes.push({ property: "group", from: current.group, to: desired.group });
    }
    return changes;
  },

  async apply(host, desired, action, current) {
    if (action === "delete") {
      if (current?.type === "symlink") await remove(host, desired.path);
      return;
    }
    if (desired.to === undefined) {
      throw new GalleyError("RESOURCE_INVALID", `link ${desired.path} needs a "to" property to be created`, {
        hint: 'say where it points: r.link("/path", { to: "/target" })',
      });
    }
    if (current?.type === "directory") {
      throw new GalleyError("APPLY_FAILED", `${desired.path} is a directory, not a link`, {
        hint: "delete the directory first (directory resource, action delete, recursive: true), or choose another path",
      });
    }
    if (current?.type !== "symlink" || current.target !== desired.to)
      await symlink(host, desired.to, desired.path);
    await chown(host, desired.path, desired.owner, desired.group);
  },
});
