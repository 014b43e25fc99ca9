// Writes docs/resources.md from the resource types' schemas (`npm run docs`); a test keeps it current.
import * as fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { resourcesReference } from "../src/cli/reference.ts";

const target = fileURLToPath(new URL("../docs/resources.md", import.meta.url));
await fs.writeFile(target, resourcesReference());
console.log(`wrote ${target}`);

// the stack file's JSON Schema for editors, from the schema that validates stack files
const { stackJsonSchema } = await import("../src/stacks/json-schema.ts");
const schemaFile = fileURLToPath(new URL("../schemas/stack.schema.json", import.meta.url));
await fs.writeFile(schemaFile, `${JSON.stringify(stackJsonSchema(), null, 2)}\n`);
console.log(`wrote ${schemaFile}`);
