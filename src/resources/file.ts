import * as v from "valibot";
import { defineResourceType, described, pathSchema } from "../core/resource.ts";
import { remove } from "../core/fsops.ts";
import {
  applyFile,
  diffFile,
  fileProperties,
  type FileState,
  pathRequires,
  readFileState,
} from "./filestate.ts";

const schema = v.strictObject({
  path: pathSchema("absolute path of the file (defaults to the resource name)"),
  content: v.optional(described(v.string(), "the file's content; omit to leave content unmanaged")),
  source: v.optional(
    described(v.string(), "a file in the cookbook's files/ folder to copy (instead of content)"),
  ),
  ...fileProperties,
  verify: v.optional(
    described(
      v.string(),
      "a shell command that must exit 0 on the new content before it replaces the file; %{path} is the candidate file",
    ),
  ),
  contentBase64: v.optional(
    described(v.string(), "binary content as base64 (set by compile for binary `source` files)"),
  ),
});

type Props = v.InferOutput<typeof schema>;

/** A regular file: content, mode, owner, group. */
export const file = defineResourceType<typeof schema, FileState>({
  type: "file",
  concurrent: true,
  description: "A regular file: its content (inline or from the cookbook's files/), mode, owner and group.",
  actions: ["create", "delete", "touch", "create_if_missing"],
  imperative: ["touch"],
  schema,
  nameProperty: "path",

  key: (props) => props.path,

  compile(props, context) {
    const source = props.source;
    if (source === undefined) return props;
    if (props.content !== undefined) throw new Error("give either content or source, not both");
    return context.cookbookFile("files", source).then(({ data }) => {
      const text = new TextDecoder("utf-8", { fatal: true });
      try {
        return { ...props, content: text.decode(data) };
      } catch {
        return { ...props, contentBase64: Buffer.from(data).toString("base64") };
      }
    });
  },

  autoRequires: pathRequires,

  read: (host, props) =>
    readFileState(host, props.path, props.content !== undefined || props.contentBase64 !== undefined),

  diff(current, desired, action) {
    switch (action) {
      case "delete":
        return current ? [{ property: "ensure", from: current.type, to: "absent" }] : [];
      case "touch":
        return [...diffFile(current, desiredFile(desired)), { property: "mtime", to: "now" }];
      case "create_if_missing":
        return current ? [] : diffFile(current, desiredFile(desired));
      default:
        return diffFile(current, desiredFile(desired));
    }
  },

  async apply(host, desired, action, current, context) {
    if (action === "delete") return remove(host, desired.path);
    await applyFile(host, desiredFile(desired), current, context);
    if (action === "touch") await host.exec(["touch", "--", desired.path]);
  },
});

function desiredFile(props: Props) {
  const content =
    props.contentBase64 !== undefined
      ? Buffer.from(props.contentBase64, "base64")
      : props.content !== undefined
        ? Buffer.from(props.content, "utf8")
        : undefined;
  return { ...props, content, backup: props.backup === false ? 0 : props.backup };
}
