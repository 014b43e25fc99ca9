import * as path from "node:path";

/** Options shared by the commands that compile a run list. */
export const runListOptions = {
  cookbooks: {
    type: "string",
    default: "cookbooks",
    description: "the cookbooks folder (default ./cookbooks)",
  },
  attrs: {
    type: "string",
    multiple: true,
    description: "an attributes file (JSON or YAML) merged over cookbook defaults; repeatable",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

export interface RunListValues {
  cookbooks: string;
  attrs?: string[];
  json: boolean;
}

export function cookbooksDir(values: RunListValues): string {
  return path.resolve(values.cookbooks);
}
