// The folder dependency rule of src/ (docs/engine.md, "Layers"), checked by `npm run lint`.
// A folder may import its own files and the folders of the layers below it, nothing else:
// not a folder of a higher layer (a back-edge), not a sibling of its own layer.
// Tests (*.test.ts) are exempt: a unit test may assemble the engine from every layer.

/** The layers, bottom first; folders that do not exist yet keep their place for when they do. */
const layers = [
  ["core"],
  ["hosts"],
  ["resources", "secrets", "store"],
  ["sources"],
  ["cookbooks"],
  ["providers"],
  ["stacks", "inventory"],
  ["fleet"],
  ["lifecycle"],
  // deployments build on lifecycle events, configure and app archives
  ["deploy"],
  ["cli", "server", "agent"],
];

const tests = "\\.test\\.ts$";
const folders = (names) => `^src/(${names.join("|")})/`;

/** One rule per layer: its folders may not import a higher layer's folders. */
const upward = layers.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.join("-")}`,
  comment: `${layer.join(", ")} may import only ${layers.slice(0, i).flat().join(", ") || "nothing of src/"}`,
  severity: "error",
  from: { path: folders(layer), pathNot: tests },
  to: { path: folders(layers.slice(i + 1).flat()) },
}));

/** Siblings of one layer stay independent of each other. */
const siblings = layers
  .filter((layer) => layer.length > 1)
  .flatMap((layer) =>
    layer.map((name) => ({
      name: `layer-sibling-${name}`,
      comment: `${name} may not import ${layer.filter((n) => n !== name).join(", ")} (same layer)`,
      severity: "error",
      from: { path: folders([name]), pathNot: tests },
      to: { path: folders(layer.filter((n) => n !== name)) },
    })),
  );

module.exports = {
  forbidden: [
    ...upward,
    ...siblings,
    {
      name: "no-folder-cycle",
      comment: "an import cycle that leaves its folder (a cycle inside one folder is that folder's business)",
      severity: "error",
      from: { path: "^src/([^/]+)/", pathNot: tests },
      to: { circular: true, via: { pathNot: "^src/$1/" } },
    },
    {
      name: "panel-ui-browser-only",
      comment:
        "the panel's browser code (src/server/panel/ui/) imports only ui/ files, preact and htm (no node: module, nothing else of src/): it runs in a browser as served",
      severity: "error",
      from: { path: "^src/server/panel/ui/", pathNot: tests },
      to: {
        pathNot: [
          "^src/server/panel/ui/",
          "(^|/)node_modules/(preact|htm)/",
        ],
      },
    },
    {
      name: "entry-not-imported",
      comment: "src/index.ts (the public API) sits above every layer: nothing in src/ imports it",
      severity: "error",
      from: { path: "^src/", pathNot: tests },
      to: { path: "^src/index\\.ts$" },
    },
  ],
  options: {
    // type-only imports are edges too: a type from a higher layer is a back-edge
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    // no includeOnly: npm and node: modules stay as leaves (not followed), for the panel's rule
  },
};
