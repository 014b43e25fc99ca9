import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from "node:crypto";
import { GalleyError } from "../core/errors.ts";
import type { Store, UserRecord } from "../store/store.ts";

// User accounts: people who log in to the web panel with a name and a password. The store keeps
// `scrypt$N$r$p$salt$hash`, never the password; checking one takes as long whether the user exists
// or not, so that the login's timing does not say which names are accounts.

/** scrypt's cost: 2^15 × 8 × 128 bytes = 32 MiB and ~50–100 ms per hash on a server core. */
const cost = { N: 2 ** 15, r: 8, p: 1 } as const;
const keyBytes = 32;
/** the memory scrypt may take: twice what the cost needs, and bounded for hashes read from the store */
const maxmem = 64 * 1024 * 1024;

/** The shortest password accepted. */
export const minPasswordLength = 12;
/** The longest: a password is hashed on every login, and a megabyte one would be hashed as well. */
export const maxPasswordLength = 1024;
const userNamePattern = /^[A-Za-z0-9_.@-]{1,64}$/;

function derive(password: string, salt: Buffer, options: ScryptOptions & { N: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFC"), salt, keyBytes, { ...options, maxmem }, (error, key) =>
      error === null ? resolve(key) : reject(error),
    );
  });
}

/**
 * Hashes a password for the store: `scrypt$32768$8$1$<salt>$<hash>` (base64url, 16-byte salt).
 *
 * @example const passwordHash = await hashPassword("correct horse battery")
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost);
  return ["scrypt", cost.N, cost.r, cost.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

/** Whether `password` matches a stored `scrypt$…` hash (constant time; false for a malformed hash). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match =
    /^scrypt\$(\d{1,7})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{8,64})\$([A-Za-z0-9_-]{16,128})$/.exec(stored);
  if (match === null) {
    await dummyVerify(password);
    return false;
  }
  const [, n = "", r = "", p = "", salt = "", hash = ""] = match;
  const expected = Buffer.from(hash, "base64url");
  let key: Buffer;
  try {
    key = await derive(password, Buffer.from(salt, "base64url"), {
      N: Number(n),
      r: Number(r),
      p: Number(p),
    });
  } catch {
    return false; // parameters scrypt refuses (N not a power of two, over maxmem)
  }
  const actual = key.subarray(0, expected.length);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

let dummyHash: Promise<string> | undefined;

/** Makes the dummy hash now (a server calls it at start), so that the first unknown name is not slower. */
export function prepareDummyHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(16).toString("base64url"));
  return dummyHash;
}

/** Takes as long as checking a password against a real hash, and fails: for names that are no user. */
export async function dummyVerify(password: string): Promise<void> {
  await verifyPassword(password, await prepareDummyHash());
}

/**
 * The user whose name and password these are, or undefined; as slow for an unknown name as for a
 * wrong password.
 */
export async function checkLogin(
  store: Store,
  name: string,
  password: string,
): Promise<UserRecord | undefined> {
  const user = userNamePattern.test(name) ? await store.getUser(name) : undefined;
  if (user === undefined || password.length > maxPasswordLength) {
    await dummyVerify(password.slice(0, maxPasswordLength));
    return undefined;
  }
  return (await verifyPassword(password, user.passwordHash)) ? user : undefined;
}

/** A user as the API and `galley user --json` show it: never its password hash. */
export type PublicUser = Omit<UserRecord, "passwordHash">;

/** A user record without its password hash. */
export function publicUser(record: UserRecord): PublicUser {
  const { passwordHash: _, ...shown } = record;
  return shown;
}

/** What is wrong with a password as a new one (undefined: nothing). */
export function passwordProblem(password: string): string | undefined {
  if ([...password].length < minPasswordLength)
    return `a password has at least ${minPasswordLength} characters`;
  if (password.length > maxPasswordLength) return `a password has at most ${maxPasswordLength} characters`;
  if (/^\s|\s$/.test(password)) return "a password does not begin or end with white space";
  return undefined;
}

/** What is wrong with a user name (undefined: nothing). */
export function userNameProblem(name: string): string | undefined {
  return userNamePattern.test(name) ? undefined : "a user name is 1 to 64 of A-Z a-z 0-9 _ . @ -";
}

/**
 * Refuses a user name or a new password that breaks the rules (`code`: ARGS_INVALID on the command
 * line, REQUEST_INVALID through the API).
 */
export function checkNewUser(
  input: { name?: string | undefined; password?: string | undefined },
  code: "ARGS_INVALID" | "REQUEST_INVALID",
): void {
  const problem =
    (input.name === undefined ? undefined : userNameProblem(input.name)) ??
    (input.password === undefined ? undefined : passwordProblem(input.password));
  if (problem !== undefined)
    throw new GalleyError(code, problem, {
      hint: `a user name of letters, digits, _ . @ -; a password of ${minPasswordLength} characters or more (a phrase of a few words)`,
    });
}
