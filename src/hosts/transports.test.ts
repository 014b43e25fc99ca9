import assert from "node:assert/strict";
import * as os from "node:os";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { LocalHost } from "./local.ts";
import { transport, transports } from "./transports.ts";

test("transports: the registry names local and ssh, and dispatches by name", () => {
  assert.deepEqual(Object.keys(transports), ["local", "ssh"]);
  assert.equal(transport("local"), transports.local);
  assert.equal(transport("ssh"), transports.ssh);
});

test("transports: an unknown transport is a USAGE error listing the registry", () => {
  for (const name of ["agent", "toString"]) {
    assert.throws(
      () => transport(name),
      (error: unknown) =>
        error instanceof GalleyError &&
        error.code === "USAGE" &&
        error.message === `no transport "${name}"` &&
        error.hint === "the transports are: local, ssh",
    );
  }
});

test("transports: local connects this machine and runs a command", async () => {
  const host = await transport("local").connect({ name: "here" });
  assert.ok(host instanceof LocalHost);
  assert.equal(host.name, "here");
  const result = await host.exec(["id", "-un"]);
  assert.equal(result.stdout.trim(), os.userInfo().username);
});
