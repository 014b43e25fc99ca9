import * as path from "node:path";
import type { CatalogResource, Edge } from "./catalog.ts";
import { GalleyError } from "./errors.ts";
import { displayPath } from "./location.ts";
import type { AutoRequire } from "./resource.ts";

/** A resource with what the engine needs to find its automatic dependencies. */
export interface GraphNode {
  resource: CatalogResource;
  /** the path this resource manages, if any */
  path: string | undefined;
  autoRequires: AutoRequire[];
}

/**
 * The edges of a catalog: explicit (requires, before, notifications) and automatic (a path
 * requires its nearest managed parent directory and an earlier resource on the same path; an
 * owner requires its user and group).
 */
export function buildEdges(nodes: GraphNode[]): Edge[] {
  const edges: Edge[] = [];
  // from → to, for de-duplication and for the reachability checks of notifications
  const next = new Map<string, Set<string>>();
  const add = (from: string, to: string, reason: Edge["reason"]) => {
    if (from === to) return;
    let targets = next.get(from);
    if (!targets) {
      targets = new Set();
      next.set(from, targets);
    }
    if (targets.has(to)) return;
    targets.add(to);
    edges.push({ from, to, reason });
  };
  const byPath = new Map<string, string[]>();
  const directories = new Map<string, string>();
  for (const node of nodes) {
    if (node.path === undefined) continue;
    const same = byPath.get(node.path);
    if (same) same.push(node.resource.id);
    else byPath.set(node.path, [node.resource.id]);
    if (node.resource.type === "directory") directories.set(node.path, node.resource.id);
  }
  const index = new Map(nodes.map((node, i) => [node.resource.id, i]));
  nodes.forEach((node, i) => {
    const { id } = node.resource;
    for (const dependency of node.resource.requires) add(dependency, id, "requires");
    for (const child of node.resource.children ?? []) add(child, id, "contains");
    for (const later of node.resource.before) add(id, later, "before");
    for (const auto of node.autoRequires) {
      if (auto.path !== undefined) {
        let earlier = false;
        for (const other of byPath.get(auto.path) ?? []) {
          if ((index.get(other) ?? i) >= i) continue;
          add(other, id, "path");
          earlier = true;
        }
        // an earlier resource on the same path already follows the parent
        const parent = earlier ? undefined : nearestDirectory(auto.path, directories);
        if (parent && parent !== id) add(parent, id, "parent");
      }
      if (auto.user !== undefined && index.has(`user[${auto.user}]`)) add(`user[${auto.user}]`, id, "owner");
      if (auto.group !== undefined && index.has(`group[${auto.group}]`))
        add(`group[${auto.group}]`, id, "group");
    }
  });
  // a notification orders its target after its source unless explicit edges already say the opposite
  for (const node of nodes) {
    for (const notification of node.resource.notifies) {
      if (!reaches(next, notification.target, node.resource.id))
        add(node.resource.id, notification.target, "notifies");
    }
  }
  return edges;
}

function reaches(next: Map<string, Set<string>>, from: string, to: string): boolean {
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const target of next.get(id) ?? []) stack.push(target);
  }
  return false;
}

function nearestDirectory(file: string, directories: Map<string, string>): string | undefined {
  let dir = path.dirname(file);
  while (true) {
    const id = directories.get(dir);
    if (id) return id;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Orders resources so that every edge is respected, keeping declaration order wherever the
 * edges allow. A cycle is an error naming every resource on it.
 */
export function orderResources(resources: CatalogResource[], edges: Edge[]): CatalogResource[] {
  const index = new Map(resources.map((r, i) => [r.id, i]));
  const outgoing = resources.map(() => [] as number[]);
  const incoming = resources.map(() => 0);
  for (const edge of edges) {
    const from = index.get(edge.from);
    const to = index.get(edge.to);
    if (from === undefined || to === undefined) continue;
    outgoing[from]!.push(to);
    incoming[to]! += 1;
  }
  const ready = new MinHeap();
  incoming.forEach((count, i) => {
    if (count === 0) ready.push(i);
  });
  const order: CatalogResource[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    order.push(resources[i]!);
    for (const next of outgoing[i]!) {
      incoming[next]! -= 1;
      if (incoming[next] === 0) ready.push(next);
    }
  }
  if (order.length < resources.length) throw cycleError(resources, edges, incoming);
  return order;
}

function cycleError(resources: CatalogResource[], edges: Edge[], incoming: number[]): GalleyError {
  const stuck = new Set(resources.filter((_, i) => incoming[i]! > 0).map((r) => r.id));
  const next = new Map<string, Edge[]>();
  for (const edge of edges) {
    if (stuck.has(edge.from) && stuck.has(edge.to))
      next.set(edge.from, [...(next.get(edge.from) ?? []), edge]);
  }
  // walk forward inside the stuck set until a resource repeats: that loop is a cycle
  const path: Edge[] = [];
  const position = new Map<string, number>();
  let current = [...stuck].find((id) => next.has(id))!;
  while (!position.has(current)) {
    position.set(current, path.length);
    const edge = next.get(current)![0]!;
    path.push(edge);
    current = edge.to;
  }
  const cycle = path.slice(position.get(current));
  const byId = new Map(resources.map((r) => [r.id, r]));
  const lines = cycle.map((edge) => {
    const source = byId.get(edge.from)!.source;
    return `  ${edge.from} (${displayPath(source.file)}:${source.line}) → ${edge.to} [${edge.reason}]`;
  });
  return new GalleyError(
    "DEPENDENCY_CYCLE",
    `dependency cycle between ${cycle.length} resources:\n${lines.join("\n")}`,
    {
      hint: "remove one of these requires/before/notifies, or reorder so that the edges point one way",
    },
  );
}

/** A binary min-heap of numbers: ready resources, smallest declaration index first. */
class MinHeap {
  #items: number[] = [];
  get size(): number {
    return this.#items.length;
  }
  push(value: number): void {
    const items = this.#items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }
  pop(): number {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      while (true) {
        const left = 2 * i + 1;
        if (left >= items.length) break;
        const right = left + 1;
        const child = right < items.length && items[right]! < items[left]! ? right : left;
        if (items[child]! >= last) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}
