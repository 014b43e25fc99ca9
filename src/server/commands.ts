import { userInfo } from "node:os";
import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import type { Grant, Role, Store, TokenRecord } from "../store/store.ts";
import { roles } from "../store/store.ts";

// `galley server` (the kitchen's HTTPS API and agent channel), `galley token` (admin tokens) and
// `galley user` (web panel logins), the last two straight on the kitchen's store: how the first
// tokens and users are made without a server running.
// They live in the server's folder because src/cli may not import src/server (siblings): the
// entry point, bin/galley.js, adds them to the CLI's command registry.

const kitchenOption = {
  kitchen: { type: "string", default: ".", description: "the kitchen served (default: the current folder)" },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface ServerValues {
  kitchen: string;
  listen?: string;
  data?: string;
  san?: string[];
  "agent-url"?: string;
  json: boolean;
}

/** `galley server`: serves the kitchen until SIGTERM or SIGINT. */
export const serverCommand = {
  summary: "serve the kitchen: HTTPS API with its own CA, admin tokens, audit log, agent channel",
  usage: "[--listen ADDR:PORT] [--data DIR] [--kitchen DIR] [--san NAME]… [--agent-url URL] [--json]",
  options: {
    ...kitchenOption,
    listen: { type: "string", description: "the address and port to listen on (default 0.0.0.0:8443)" },
    data: {
      type: "string",
      description: "the server's folder: TLS files, admin.token (default KITCHEN/.galley/server)",
    },
    san: {
      type: "string",
      multiple: true,
      description: "another name for the server certificate; repeatable",
    },
    "agent-url": {
      type: "string",
      description:
        "the URL agents reach this server at, when not the listen address (e.g. https://10.0.0.1:8443); agent instances the server sets up enroll with it",
    },
  } as const,
  async run(values: ServerValues): Promise<number> {
    const { serveKitchen } = await import("./serve.ts");
    const server = await serveKitchen({
      kitchen: path.resolve(values.kitchen),
      dataDir: values.data === undefined ? undefined : path.resolve(values.data),
      listen: values.listen ?? "0.0.0.0:8443",
      sans: values.san ?? [],
      agentUrl: values["agent-url"],
      log: (line) => process.stderr.write(`${line}\n`),
    });
    if (values.json)
      writeJson({
        status: "listening",
        url: server.url,
        agentUrl: server.ctx.agentUrl,
        caFingerprint: server.caFingerprint,
      });
    else
      write(`galley server: listening on ${server.url}\nCA fingerprint (sha256): ${server.caFingerprint}\n`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
    });
    process.stderr.write(`galley server: ${signal}: stopping\n`);
    await server.close();
    return exitCodes.ok;
  },
};

interface TokenValues {
  kitchen: string;
  name?: string;
  grant?: string[];
  expires?: string;
  json: boolean;
}

const subcommands = ["create", "list", "revoke"] as const;

/** `galley token create|list|revoke`: the server's admin tokens, on the kitchen's store. */
export const tokenCommand = {
  summary: "the server's admin tokens: create (prints the secret once), list, revoke",
  usage:
    "create --name NAME --grant STACK:ROLE… [--expires 30d] | list | revoke ID  [--kitchen DIR] [--json]",
  options: {
    ...kitchenOption,
    name: { type: "string", description: "create: the token's name (who or what uses it)" },
    grant: {
      type: "string",
      multiple: true,
      description: "create: STACK:ROLE (role viewer, deployer or admin; STACK * for all); repeatable",
    },
    expires: {
      type: "string",
      description: "create: when it expires: 30d, 12h, 90m or an ISO date (default never)",
    },
  } as const,
  async run(values: TokenValues, positionals: string[]): Promise<number> {
    const [subcommand, ...rest] = positionals;
    if (!subcommands.includes(subcommand as (typeof subcommands)[number]))
      throw new GalleyError(
        "USAGE",
        subcommand ? `galley token: unknown subcommand "${subcommand}"` : "galley token: which subcommand?",
        {
          hint: `subcommands: ${subcommands.join(", ")}; see galley token --help`,
        },
      );
    const [{ openSqliteStore, storeFile }, { mintToken }] = await Promise.all([
      import("../store/sqlite.ts"),
      import("./auth.ts"),
    ]);
    const store = openSqliteStore(storeFile(path.resolve(values.kitchen)));
    try {
      if (subcommand === "create") {
        if (values.name === undefined)
          throw new GalleyError("USAGE", "galley token create: --name is required", {
            hint: "e.g. --name ci --grant web:deployer",
          });
        const grants = (values.grant ?? []).map(parseGrant);
        if (grants.length === 0)
          throw new GalleyError("USAGE", "galley token create: give at least one --grant STACK:ROLE", {
            hint: "e.g. --grant web:deployer, or --grant '*:viewer' for every stack",
          });
        const expiresAt = values.expires === undefined ? undefined : parseExpiry(values.expires);
        const { record, secret } = await mintToken(store, { name: values.name, grants, expiresAt });
        await store.appendAudit({
          ...localActor(),
          action: "token.create",
          target: record.id,
          outcome: "ok",
          detail: { name: record.name, grants },
        });
        if (values.json) writeJson({ token: record, secret });
        else
          write(
            `token ${record.id} (${record.name}): ${grantsText(record.grants)}\n${secret}\nthe secret is shown only now: keep it\n`,
          );
        return exitCodes.ok;
      }
      if (subcommand === "list") {
        const tokens = await store.listTokens();
        if (values.json) writeJson({ tokens });
        else write(tokens.map(tokenLine).join("") || "no tokens\n");
        return exitCodes.ok;
      }
      const [id] = rest;
      if (id === undefined)
        throw new GalleyError("USAGE", "galley token revoke: which token id?", {
          hint: "galley token list shows them",
        });
      const record = await revoke(store, id);
      await store.appendAudit({ ...localActor(), action: "token.revoke", target: record.id, outcome: "ok" });
      if (values.json) writeJson({ token: record });
      else write(`token ${record.id} (${record.name}) revoked\n`);
      return exitCodes.ok;
    } finally {
      await store.close();
    }
  },
};

interface UserValues {
  kitchen: string;
  grant?: string[];
  "password-stdin": boolean;
  json: boolean;
}

const userSubcommands = ["add", "list", "remove", "passwd"] as const;

/** `galley user add|list|remove|passwd`: the server's users (web panel logins), on the kitchen's store. */
export const userCommand = {
  summary: "the server's users, who log in to the web panel: add, list, remove, passwd",
  usage:
    "add NAME --grant STACK:ROLE… [--password-stdin] | list | remove NAME | passwd NAME [--password-stdin]  [--kitchen DIR] [--json]",
  options: {
    ...kitchenOption,
    grant: {
      type: "string",
      multiple: true,
      description: "add: STACK:ROLE (role viewer, deployer or admin; STACK * for all); repeatable",
    },
    "password-stdin": {
      type: "boolean",
      default: false,
      description: "add, passwd: read the password from stdin (else it is asked on the terminal)",
    },
  } as const,
  async run(values: UserValues, positionals: string[]): Promise<number> {
    const [subcommand, name, ...extra] = positionals;
    if (!userSubcommands.includes(subcommand as (typeof userSubcommands)[number]))
      throw new GalleyError(
        "USAGE",
        subcommand ? `galley user: unknown subcommand "${subcommand}"` : "galley user: which subcommand?",
        { hint: `subcommands: ${userSubcommands.join(", ")}; see galley user --help` },
      );
    if (subcommand !== "list" && name === undefined)
      throw new GalleyError("USAGE", `galley user ${subcommand}: which user?`, {
        hint:
          subcommand === "add"
            ? "e.g. galley user add alice --grant web:deployer"
            : "galley user list shows them",
      });
    if (extra.length > 0 || (subcommand === "list" && name !== undefined))
      throw new GalleyError("USAGE", `galley user ${subcommand}: unexpected argument "${extra[0] ?? name}"`);
    if (subcommand !== "add" && values.grant !== undefined)
      throw new GalleyError("USAGE", `galley user ${subcommand}: --grant is for add`, {
        hint: "to change a user's grants: PATCH /v1/users/NAME, or remove and add the user again",
      });
    const users = await import("./users.ts");
    if (subcommand === "add") {
      users.checkNewUser({ name }, "ARGS_INVALID");
      if ((values.grant ?? []).length === 0)
        throw new GalleyError("USAGE", "galley user add: give at least one --grant STACK:ROLE", {
          hint: "e.g. --grant web:deployer, or --grant '*:viewer' for every stack",
        });
    }
    const grants = (values.grant ?? []).map(parseGrant);
    const { openSqliteStore, storeFile } = await import("../store/sqlite.ts");
    const store = openSqliteStore(storeFile(path.resolve(values.kitchen)));
    try {
      if (subcommand === "list") {
        const list = (await store.listUsers()).map(users.publicUser);
        if (values.json) writeJson({ users: list });
        else
          write(
            list
              .map(
                (u) =>
                  `${u.name.padEnd(16)} ${grantsText(u.grants).padEnd(24)} last login ${u.lastLoginAt ?? "never"}\n`,
              )
              .join("") || "no users\n",
          );
        return exitCodes.ok;
      }
      const user = name ?? "";
      const known = await store.getUser(user);
      if (subcommand === "add" && known !== undefined)
        throw new GalleyError("ARGS_INVALID", `user ${user} exists`, {
          hint: "galley user passwd changes a password; remove and add again to change grants",
        });
      if (subcommand !== "add" && known === undefined)
        throw new GalleyError("ARGS_INVALID", `no user ${user}`, { hint: "galley user list shows them" });
      if (subcommand === "remove") {
        const sessions = await store.deleteSessionsOf({ kind: "user", name: user });
        await store.deleteUser(user);
        await store.appendAudit({
          ...localActor(),
          action: "user.delete",
          target: `user:${user}`,
          outcome: "ok",
        });
        if (values.json) writeJson({ removed: user, sessions });
        else write(`user ${user} removed; ${sessions} web session(s) ended\n`);
        return exitCodes.ok;
      }
      const password = await readNewPassword(values["password-stdin"], user);
      users.checkNewUser({ password }, "ARGS_INVALID");
      const passwordHash = await users.hashPassword(password);
      if (subcommand === "add") {
        const record = await store.createUser({ name: user, passwordHash, grants });
        const detail = { grants };
        await store.appendAudit({
          ...localActor(),
          action: "user.create",
          target: `user:${user}`,
          outcome: "ok",
          detail,
        });
        if (values.json) writeJson({ user: users.publicUser(record) });
        else write(`user ${user}: ${grantsText(record.grants)}\n`);
        return exitCodes.ok;
      }
      const record = await store.updateUser(user, { passwordHash });
      const sessions = await store.deleteSessionsOf({ kind: "user", name: user });
      const detail = { password: true };
      await store.appendAudit({
        ...localActor(),
        action: "user.update",
        target: `user:${user}`,
        outcome: "ok",
        detail,
      });
      if (values.json) writeJson({ user: users.publicUser(record), sessions });
      else write(`password of ${user} changed; ${sessions} web session(s) ended\n`);
      return exitCodes.ok;
    } finally {
      await store.close();
    }
  },
};

/** A new password: from stdin (--password-stdin, one trailing newline dropped), or asked twice on the terminal. */
async function readNewPassword(fromStdin: boolean, user: string): Promise<string> {
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks)
      .toString("utf8")
      .replace(/\r?\n$/, "");
  }
  if (!process.stdin.isTTY)
    throw new GalleyError("USAGE", "stdin is not a terminal: the password cannot be asked", {
      hint: "give it on stdin with --password-stdin (printf '%s' \"$PASSWORD\" | galley user … --password-stdin)",
    });
  const { promptHidden } = await import("./prompt.ts");
  const first = await promptHidden(`password for ${user}: `);
  const again = await promptHidden("again: ");
  if (first !== again)
    throw new GalleyError("ARGS_INVALID", "the two passwords differ", { hint: "run it again" });
  return first;
}

async function revoke(store: Store, id: string): Promise<TokenRecord> {
  if (!(await store.listTokens()).some((t) => t.id === id))
    throw new GalleyError("ARGS_INVALID", `no token ${id}`, {
      hint: "galley token list shows the tokens' ids",
    });
  const record = await store.revokeToken(id);
  await store.deleteSessionsOf({ kind: "token", tokenId: id });
  return record;
}

/** Who changed tokens straight on the store: the local user (the audit log records it). */
function localActor(): { actor: string } {
  let user = process.env.USER ?? "unknown";
  try {
    user = userInfo().username;
  } catch {}
  return { actor: `local:${user}` };
}

/** STACK:ROLE as a grant. */
export function parseGrant(text: string): Grant {
  const at = text.lastIndexOf(":");
  const stack = text.slice(0, at);
  const role = text.slice(at + 1);
  if (at <= 0 || !roles.includes(role as Role) || !/^(\*|[a-z0-9][a-z0-9-]{0,62})$/.test(stack))
    throw new GalleyError("ARGS_INVALID", `--grant ${text} is not STACK:ROLE`, {
      hint: `ROLE is ${roles.join(", ")}; STACK a stack name or * (e.g. --grant web:deployer)`,
    });
  return { stack, role: role as Role };
}

/** 30d, 12h, 90m or an ISO date as an ISO time. */
export function parseExpiry(text: string, now = new Date()): string {
  const units: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000 };
  const relative = /^(\d{1,5})([dhm])$/.exec(text.trim());
  if (relative !== null)
    return new Date(now.getTime() + Number(relative[1]) * (units[relative[2] ?? "d"] ?? 0)).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at) || at <= now.getTime())
    throw new GalleyError(
      "ARGS_INVALID",
      `--expires ${text} is not a duration (30d, 12h, 90m) or a future date`,
      {
        hint: "e.g. --expires 30d or --expires 2027-06-30",
      },
    );
  return new Date(at).toISOString();
}

function write(text: string): void {
  process.stdout.write(text);
}

function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function grantsText(grants: Grant[]): string {
  return grants.map((g) => `${g.stack}:${g.role}`).join(", ");
}

function tokenLine(t: TokenRecord): string {
  const state =
    t.revokedAt !== undefined
      ? `revoked ${t.revokedAt}`
      : t.expiresAt !== undefined
        ? `expires ${t.expiresAt}`
        : "no expiry";
  return `${t.id}  ${t.name.padEnd(16)} ${grantsText(t.grants).padEnd(24)} ${state}  last used ${t.lastUsedAt ?? "never"}\n`;
}
