// Galley's own recipe files travel in a job as `galley:<path under src/>`; the agent runs its own
// install's copy. The mapping is core's, so that the server and the agent cannot disagree.
export { isBuiltinItem as isBuiltin, resolveBuiltin } from "../core/builtin-recipes.ts";
