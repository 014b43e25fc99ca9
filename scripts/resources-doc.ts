// Writes docs/resources.md from the resource types' schemas (`npm run docs`); a test keeps it current.
import * as fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { resourcesReference } from "../src/cli/reference.ts";

const target = fileURLToPath(new URL("../docs/resources.md", import.meta.url));
await fs.writeFile(target, resourcesReference());
console.log(`wrote ${target}`);
