import { type Attributes, deepMerge, isPlainObject } from "../core/attributes.ts";
import { secretValues } from "../core/secrets.ts";
import { redacted } from "../core/report.ts";

/** The precedence levels of attributes, lowest first: a higher level wins. */
export const attributeLevels = [
  /** cookbook attributes/ files, dependencies first */
  "default",
  /** the stack's attributes */
  "stack",
  /** the attributes of the instance's layers */
  "layer",
  /** the instance's own attributes */
  "instance",
  /** a deployment's custom JSON (galley deploy --attrs): repeated as it was by a rollback */
  "deployment",
  /** the run's --attrs files, in the order given */
  "run",
  /** values set by recipes with r.override() during compile */
  "override",
  /** the host's facts: they always win */
  "automatic",
] as const;

export type AttributeLevel = (typeof attributeLevels)[number];

/** Where one layer of attributes comes from. */
export interface AttributeSource {
  level: AttributeLevel;
  /** for people: "cookbook web: attributes/default.yaml", "--attrs prod.yaml", "recipe web::default", "facts" */
  label: string;
  file?: string;
  /** the 1-based line where a key path is set in `file`, when it has lines (YAML and JSON do) */
  line?(path: readonly string[]): number | undefined;
  /** its values are secret: shown as "(sensitive)" by explain and redacted() */
  sensitive?: boolean;
}

/** One layer's part in the value at a path. */
export interface AttributeContribution {
  level: AttributeLevel;
  label: string;
  file?: string;
  line?: number;
  /** what this layer set at the path (or at `replaced`); "(sensitive)" in place of every secret leaf */
  value: unknown;
  /** the ancestor this layer replaced with a value that does not hold the path, hiding what was below */
  replaced?: string[];
  /** wins: the value is this layer's; merged: one of the objects merged into it; overridden/hidden: lost */
  status: "wins" | "merged" | "overridden" | "hidden";
  sensitive: boolean;
}

/** Where one leaf of an object value came from. */
export interface AttributeLeaf {
  path: string[];
  value: unknown;
  level: AttributeLevel;
  label: string;
  file?: string;
  line?: number;
  sensitive: boolean;
}

/** Every layer that set a path, in merge order, and the outcome. */
export interface AttributeExplanation {
  path: string[];
  /** the merged value, secrets redacted; undefined when the path is not set */
  value: unknown;
  sensitive: boolean;
  contributions: AttributeContribution[];
  /** the layer the value comes from, when one alone decides it (not for an object merged from several) */
  winner?: AttributeContribution;
  /** for an object value: each leaf (scalar, array or empty object) and the layer it came from */
  leaves?: AttributeLeaf[];
}

interface Layer {
  source: AttributeSource;
  values: Attributes;
}

/** What one layer does to the value at a path, given the value merged below it. */
type Effect =
  | { kind: "none" }
  | { kind: "merge" | "replace"; value: unknown }
  | { kind: "hide"; at: string[]; value: unknown };

/**
 * Attributes from many sources, merged by level (lowest first) and, within a level, in the order
 * they were added. Objects merge key by key; arrays and scalars replace (as deepMerge does).
 *
 * @example
 * const set = new AttributeSet();
 * set.add({ level: "run", label: "--attrs prod.yaml" }, { app: { port: 8443 } });
 * set.add({ level: "default", label: "cookbook web: attributes/default.yaml" }, { app: { port: 8080, workers: 2 } });
 * set.merged(); // { app: { port: 8443, workers: 2 } }
 */
export class AttributeSet {
  // kept in merge order; values are not copied, so they must not change after add()
  #layers: Layer[] = [];
  #merged: Attributes | undefined;
  #redacted: Attributes | undefined;
  #before: Attributes[] | undefined;

  /** Adds one layer; layers may come in any order of level. */
  add(source: AttributeSource, values: Attributes): void {
    const rank = attributeLevels.indexOf(source.level);
    const at = this.#layers.findIndex((layer) => attributeLevels.indexOf(layer.source.level) > rank);
    this.#layers.splice(at === -1 ? this.#layers.length : at, 0, { source, values });
    this.#merged = this.#redacted = this.#before = undefined;
  }

  /** The sources in merge order. */
  sources(): AttributeSource[] {
    return this.#layers.map((layer) => layer.source);
  }

  /** Every layer merged, the highest winning. Do not change the result: it is shared until the next add(). */
  merged(): Attributes {
    this.#merged ??= this.#layers.reduce<Attributes>((merged, layer) => deepMerge(merged, layer.values), {});
    return this.#merged;
  }

  /** The merged attributes with every value from a sensitive source shown as "(sensitive)". */
  redacted(): Attributes {
    this.#redacted ??= this.#layers.reduce<Attributes>(
      (merged, layer) =>
        deepMerge(merged, layer.source.sensitive ? (redactLeaves(layer.values) as Attributes) : layer.values),
      {},
    );
    return this.#redacted;
  }

  /**
   * The leaves of sensitive sources, to scrub from any text shown: strings and numbers (as String()
   * writes them) and each trimmed line of a multi-line string, of 4 characters or more (masking "1"
   * or "yes" everywhere would hide more than it protects); unique, longest first.
   */
  sensitiveValues(): string[] {
    return secretValues(this.#layers.filter((layer) => layer.source.sensitive).map((layer) => layer.values));
  }

  /**
   * Every layer that set `path` (dotted, or a list of keys; list indices are keys too), in merge
   * order, and which one won. A path nothing sets gives no contributions and an undefined value.
   */
  explain(path: string | readonly string[]): AttributeExplanation {
    const keys = typeof path === "string" ? (path === "" ? [] : path.split(".")) : [...path];
    const contributions = this.#trace(keys);
    const live = contributions.filter((c) => c.status === "wins" || c.status === "merged");
    const winner = live.length === 1 ? live[0] : undefined;
    const explanation: AttributeExplanation = {
      path: keys,
      value: undefined,
      sensitive: false,
      contributions,
    };
    if (winner) explanation.winner = winner;
    const value = lookup(this.merged(), keys);
    if (!value.found) return explanation;
    if (isPlainObject(value.value)) {
      explanation.value = lookup(this.redacted(), keys).value;
      const leaves = leafPaths(value.value, keys);
      if (leaves.length) explanation.leaves = leaves.map((leaf) => this.#leaf(leaf));
    } else if (winner) {
      explanation.value = winner.value;
      explanation.sensitive = winner.sensitive;
    }
    return explanation;
  }

  #leaf(path: string[]): AttributeLeaf {
    // the last live layer made the leaf: an empty object merged from several is still the last one's
    const from = this.#trace(path).findLast((c) => c.status === "wins" || c.status === "merged")!;
    return {
      path,
      value: from.value,
      ...pick(from),
      sensitive: from.sensitive,
    };
  }

  // each layer's effect on the value at `path`, with the statuses settled by the layers above it
  #trace(path: string[]): AttributeContribution[] {
    const before = this.#prefixes();
    const contributions: AttributeContribution[] = [];
    let live: AttributeContribution[] = [];
    for (const [i, layer] of this.#layers.entries()) {
      const effect = effectOf(layer.values, before[i]!, path);
      if (effect.kind === "none") continue;
      const { source } = layer;
      const at = effect.kind === "hide" ? effect.at : path;
      const line = source.line?.(at);
      const contribution: AttributeContribution = {
        level: source.level,
        label: source.label,
        ...(source.file === undefined ? {} : { file: source.file }),
        ...(line === undefined ? {} : { line }),
        value: source.sensitive ? redactLeaves(effect.value) : effect.value,
        ...(effect.kind === "hide" ? { replaced: effect.at } : {}),
        status: "wins",
        sensitive: source.sensitive === true,
      };
      if (effect.kind !== "merge") {
        for (const lower of live) lower.status = effect.kind === "hide" ? "hidden" : "overridden";
        live = [];
      }
      live.push(contribution);
      contributions.push(contribution);
    }
    // one live layer alone makes the value; several are objects merged into it
    for (const c of live) c.status = live.length === 1 ? "wins" : "merged";
    return contributions;
  }

  // the merged attributes below each layer: what that layer merges into
  #prefixes(): Attributes[] {
    if (!this.#before) {
      let merged: Attributes = {};
      this.#before = this.#layers.map((layer) => {
        const below = merged;
        merged = deepMerge(merged, layer.values);
        return below;
      });
    }
    return this.#before;
  }
}

/** What merging `values` over `below` does at `path`: the deepMerge rules, followed down one path. */
function effectOf(values: Attributes, below: unknown, path: string[]): Effect {
  let ours: unknown = values;
  let theirs: unknown = below;
  for (const [depth, key] of path.entries()) {
    // both are objects here, so they merge: descend
    if (!Object.hasOwn(ours as Attributes, key)) return { kind: "none" };
    ours = (ours as Attributes)[key];
    theirs = isPlainObject(theirs) && Object.hasOwn(theirs, key) ? theirs[key] : undefined;
    const isTarget = depth === path.length - 1;
    if (isPlainObject(ours) && isPlainObject(theirs)) {
      if (isTarget) return { kind: "merge", value: ours };
      continue;
    }
    // ours replaces whatever was below at this key, and with it everything under it
    const rest = path.slice(depth + 1);
    const reached = lookup(ours, rest);
    if (reached.found) return { kind: "replace", value: reached.value };
    const hidesSomething = lookup(theirs, rest).found;
    if (!isPlainObject(ours) || hidesSomething)
      return { kind: "hide", at: path.slice(0, depth + 1), value: ours };
    return { kind: "none" };
  }
  // the empty path: the whole attributes, merged
  return { kind: "merge", value: values };
}

/** The value at `path`, through objects by key and arrays by index. */
function lookup(value: unknown, path: readonly string[]): { found: boolean; value: unknown } {
  let node = value;
  for (const key of path) {
    if (isPlainObject(node) && Object.hasOwn(node, key)) node = node[key];
    else if (Array.isArray(node) && /^\d+$/.test(key) && Number(key) < node.length) node = node[Number(key)];
    else return { found: false, value: undefined };
  }
  return { found: true, value: node };
}

// a leaf is what replaces rather than merges: a scalar, an array, or an empty object
function leafPaths(value: Attributes, prefix: string[]): string[][] {
  return Object.entries(value).flatMap(([key, child]) =>
    isPlainObject(child) && Object.keys(child).length > 0
      ? leafPaths(child, [...prefix, key])
      : [[...prefix, key]],
  );
}

// the shape stays (objects merge the same way), every leaf becomes "(sensitive)"
function redactLeaves(value: unknown): unknown {
  if (!isPlainObject(value)) return redacted;
  return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, redactLeaves(child)]));
}

function pick(c: AttributeContribution): Pick<AttributeLeaf, "level" | "label" | "file" | "line"> {
  return {
    level: c.level,
    label: c.label,
    ...(c.file === undefined ? {} : { file: c.file }),
    ...(c.line === undefined ? {} : { line: c.line }),
  };
}

/** Human lines for an explanation: the value and who won, then one row per layer in merge order. */
export function formatExplanation(e: AttributeExplanation): string {
  const name = e.path.length ? e.path.join(".") : "(all attributes)";
  const lines = [`${name}${headline(e)}`];
  const rows = e.contributions.map((c) => [
    c.level,
    where(c),
    c.replaced
      ? `replaces ${c.replaced.join(".")} with ${show(c.value, c.sensitive)}`
      : show(c.value, c.sensitive),
    mark[c.status],
  ]);
  lines.push(...table(rows, "  "));
  if (e.leaves?.length) {
    lines.push("  leaves:");
    lines.push(
      ...table(
        e.leaves.map((l) => [l.path.join("."), show(l.value, l.sensitive), origin(l)]),
        "    ",
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}

const mark: Record<AttributeContribution["status"], string> = {
  wins: "← wins",
  merged: "merged",
  overridden: "",
  hidden: "hidden",
};

function headline(e: AttributeExplanation): string {
  const winner = e.winner;
  if (e.contributions.length === 0) return " is not set: no level sets it";
  if (winner?.replaced && e.value === undefined) {
    return ` is not set  (${origin(winner)} set ${winner.replaced.join(".")} to ${show(winner.value, winner.sensitive)})`;
  }
  const value = show(e.value, e.sensitive);
  if (winner) return ` = ${value}  (won: ${origin(winner)})`;
  const levels = e.contributions.filter((c) => c.status === "merged").length;
  return ` = ${value}  (merged from ${levels} layers)`;
}

function origin(c: { level: string; label: string; line?: number }): string {
  return `${c.level} ${where(c)}`;
}

function where(c: { label: string; line?: number }): string {
  return c.line === undefined ? c.label : `${c.label}:${c.line}`;
}

function show(value: unknown, sensitive: boolean): string {
  if (sensitive && !isPlainObject(value)) return redacted;
  const text = value === undefined ? "(none)" : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

function table(rows: string[][], indent: string): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => row[i]!.length))) ?? [];
  return rows.map((row) =>
    (
      indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 2))).join("")
    ).trimEnd(),
  );
}
