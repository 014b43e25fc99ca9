import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { ensureAgentKey, readAgentKey } from "./config.ts";

test("the agent key is made once (0600), kept on re-enrollment, replaced with --new-key", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "etc", "agent.key");
  const made = await ensureAgentKey(file);
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  const kept = await ensureAgentKey(file);
  assert.ok(made.equals(kept));
  const fresh = await ensureAgentKey(file, true);
  assert.ok(!fresh.equals(made));
  assert.ok((await readAgentKey(file))!.equals(fresh));
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
  await fs.writeFile(file, rsa.export({ type: "pkcs8", format: "pem" }) as string);
  await assert.rejects(readAgentKey(file), { code: "AGENT_CONFIG_INVALID" });
});
