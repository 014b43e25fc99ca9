import { Eta, type TemplateFunction as EtaFunction } from "eta";
import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import { defineResourceType, described, pathSchema } from "../core/resource.ts";
import {
  applyFile,
  diffFile,
  type FileState,
  fileProperties,
  pathRequires,
  readFileState,
} from "./filestate.ts";

type TemplateFunction = (variables: Record<string, unknown>) => string;

const schema = v.strictObject({
  path: pathSchema("absolute path of the rendered file (defaults to the resource name)"),
  source: described(
    v.union([
      v.pipe(v.string(), v.minLength(1)),
      v.custom<TemplateFunction>((value) => typeof value === "function", "a function (variables) => string"),
    ]),
    "an Eta template in the cookbook's templates/ folder (ERB-like: <%= it.x %>, <% code %>, -%> trims the newline), or a function (variables) => string",
  ),
  variables: v.optional(
    described(v.record(v.string(), v.unknown()), "values the template sees as `it`"),
    () => ({}),
  ),
  ...fileProperties,
  verify: v.optional(
    described(
      v.string(),
      "a shell command that must exit 0 on the new content before it replaces the file; %{path} is the candidate file",
    ),
  ),
  content: v.optional(described(v.string(), "the rendered content (set by compile; not for recipes)")),
});

type Props = v.InferOutput<typeof schema>;

/** A file rendered from an Eta template or a TypeScript function, at compile time. */
export const template = defineResourceType<typeof schema, FileState>({
  type: "template",
  concurrent: true,
  description:
    "A file rendered from an Eta template in the cookbook's templates/ folder, or from a TypeScript function.",
  actions: ["create", "delete", "create_if_missing"],
  schema,
  nameProperty: "path",

  key: (props) => props.path,

  async compile(props, context) {
    if (typeof props.source === "function")
      return { ...props, content: renderFunction(props.source, props.variables) };
    const { path, data } = await context.cookbookFile("templates", props.source);
    const views = path.slice(0, path.length - props.source.length);
    const template = { views, name: props.source, file: path, text: data };
    return { ...props, content: renderEta(template, props.variables, context.cache) };
  },

  autoRequires: pathRequires,

  read: (host, props) => readFileState(host, props.path),

  diff(current, desired, action) {
    if (action === "delete") return current ? [{ property: "ensure", from: current.type, to: "absent" }] : [];
    if (action === "create_if_missing" && current) return [];
    return diffFile(current, desiredFile(desired));
  },

  async apply(host, desired, action, current, context) {
    if (action === "delete") {
      await host.exec(["rm", "-f", "--", desired.path]);
      return;
    }
    await applyFile(host, desiredFile(desired), current, context);
  },
});

function desiredFile(props: Props) {
  if (props.content === undefined) throw new Error(`template ${props.path} was not compiled`);
  return {
    ...props,
    content: Buffer.from(props.content, "utf8"),
    backup: props.backup === false ? 0 : props.backup,
  };
}

/** An Eta template file: its folder (for includes), its name in it, its path and content. */
export interface EtaTemplate {
  views: string;
  name: string;
  file: string;
  text: Uint8Array;
}

/**
 * Renders an Eta template with `it` = variables; errors name the template file and line. The
 * template is compiled once per `cache` (one compile): a template shared by 500 resources costs
 * 500 calls of one function.
 */
export function renderEta(
  template: EtaTemplate,
  variables: Record<string, unknown>,
  cache: Map<string, unknown> = new Map(),
): string {
  const { views, name, file } = template;
  // ERB users expect the newline after a tag to be kept and `-%>` to trim it; Eta's default trims every one.
  const options = { views, autoEscape: false, autoTrim: false, cache: true } as const;
  const etaKey = `eta:${views}`;
  const eta = (cache.get(etaKey) as Eta | undefined) ?? new Eta({ ...options, debug: false });
  cache.set(etaKey, eta);
  const fnKey = `eta-fn:${file}`;
  try {
    let render = cache.get(fnKey) as EtaFunction | undefined;
    if (!render) {
      render = eta.compile(new TextDecoder().decode(template.text), { filepath: file });
      cache.set(fnKey, render);
    }
    return eta.render(render, variables, { filepath: file });
  } catch (fast) {
    // render again with line tracking, only to name the template line in the error
    try {
      new Eta({ ...options, debug: true, cache: false }).render(name, variables);
    } catch (error) {
      throw templateError(name, error);
    }
    throw templateError(name, fast);
  }
}

function renderFunction(render: TemplateFunction, variables: Record<string, unknown>): string {
  const result = render(variables);
  if (typeof result !== "string") {
    throw new GalleyError("TEMPLATE_FAILED", `template function returned ${typeof result}, not a string`, {
      hint: "return the file's content as a string",
    });
  }
  return result;
}

function templateError(file: string, error: unknown): GalleyError {
  const message = error instanceof Error ? error.message : String(error);
  return new GalleyError("TEMPLATE_FAILED", `template ${file} failed: ${message}`, {
    hint: "fix the template or the variables passed to it; templates see variables as `it`",
    cause: error,
  });
}
