import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import * as fs from "node:fs/promises";
import { loadYaml } from "../core/yaml.ts";
import { isPlainObject } from "../core/attributes.ts";
import { GalleyError, isGalleyError } from "../core/errors.ts";
import { secretValues } from "../core/secrets.ts";
import { isEncrypted } from "./envelope.ts";

export { isEncrypted, secretValues };

/*
 * An encrypted attributes file is text, so it can live in git:
 *
 *   $GALLEY_VAULT;1;AES256-GCM;scrypt          the header line
 *   base64 of salt | iv | tag | ciphertext     wrapped at 76 characters, one trailing newline
 *
 * salt: 16 random bytes (per file, new at every write); iv: 12 random bytes; tag: the 16-byte GCM
 * authentication tag; ciphertext: the UTF-8 YAML text, AES-256-GCM, as long as the plaintext.
 * key = scrypt(key file content, salt, 32 bytes, N = 2^15, r = 8, p = 1). The header line is the
 * GCM additional authenticated data, so neither it nor any byte of the body can change unnoticed.
 */

/** The first line of every encrypted file this version writes and reads. */
export const vaultHeader = "$GALLEY_VAULT;1;AES256-GCM;scrypt";

const saltBytes = 16;
const ivBytes = 12;
const tagBytes = 16;
// 2^15 × 8 × 128 bytes = 32 MiB and ~50 ms per derivation: cheap for a key file, slow for a guesser
const scryptOptions = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const lineWidth = 76;

export function encrypt(plaintext: string, key: Uint8Array | string): string {
  const salt = randomBytes(saltBytes);
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv("aes-256-gcm", deriveKey(key, salt), iv);
  cipher.setAAD(Buffer.from(vaultHeader, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  const body = Buffer.concat([salt, iv, cipher.getAuthTag(), ciphertext]).toString("base64");
  const lines = [vaultHeader];
  for (let i = 0; i < body.length; i += lineWidth) lines.push(body.slice(i, i + lineWidth));
  return `${lines.join("\n")}\n`;
}

/** Decrypts an encrypted file's text; a wrong key, a changed byte or a malformed file is SECRET_INVALID naming `file`. */
export function decrypt(text: string, key: Uint8Array | string, file: string): string {
  const { salt, iv, tag, ciphertext } = parseEnvelope(text, file);
  const decipher = createDecipheriv("aes-256-gcm", deriveKey(key, salt), iv);
  decipher.setAAD(Buffer.from(vaultHeader, "utf8"));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
  } catch {
    throw new GalleyError("SECRET_INVALID", `${file}: cannot decrypt: wrong key, or the file was changed`, {
      hint: "use the key file it was encrypted with (--key-file or GALLEY_SECRET_KEY_FILE); if it was edited by hand, restore it from version control",
    });
  }
}

function parseEnvelope(text: string, file: string) {
  const [header = "", ...rest] = text.split(/\r?\n/);
  if (header !== vaultHeader) {
    const unknown = isEncrypted(header);
    throw new GalleyError(
      "SECRET_INVALID",
      unknown
        ? `${file}: unsupported encrypted format "${header}" (this Galley reads "${vaultHeader}")`
        : `${file}: not an encrypted file (its first line is not "${vaultHeader}")`,
      {
        hint: unknown
          ? "decrypt it with the Galley version that wrote it, or restore it from version control"
          : `encrypt it with: galley secrets encrypt ${file}`,
      },
    );
  }
  const body = rest.join("").trim();
  const data = Buffer.from(body, "base64");
  if (
    !/^[A-Za-z0-9+/]*={0,2}$/.test(body) ||
    body.length % 4 !== 0 ||
    data.length < saltBytes + ivBytes + tagBytes
  ) {
    throw new GalleyError(
      "SECRET_INVALID",
      `${file}: the encrypted file is malformed (its body is not the base64 of salt, IV, tag and ciphertext)`,
      {
        hint: "restore it from version control; an encrypted file is not meant to be edited by hand (use galley secrets edit)",
      },
    );
  }
  return {
    salt: data.subarray(0, saltBytes),
    iv: data.subarray(saltBytes, saltBytes + ivBytes),
    tag: data.subarray(saltBytes + ivBytes, saltBytes + ivBytes + tagBytes),
    ciphertext: data.subarray(saltBytes + ivBytes + tagBytes),
  };
}

function deriveKey(key: Uint8Array | string, salt: Buffer): Buffer {
  const secret = typeof key === "string" ? Buffer.from(key, "utf8") : key;
  if (secret.length === 0) {
    throw new GalleyError("SECRET_INVALID", "the secret key is empty", {
      hint: "create a key file with: galley secrets keygen --key-file FILE",
    });
  }
  return scryptSync(secret, salt, 32, scryptOptions);
}

/** A new random key: 32 bytes from the system's CSPRNG, base64 (what `galley secrets keygen` writes). */
export function generateKey(): string {
  return randomBytes(32).toString("base64");
}

/**
 * The secret key: the content of `keyFile`, else of the file named by GALLEY_SECRET_KEY_FILE, without
 * trailing whitespace. Like ssh, refuses a key file that group or others may access.
 */
export async function readKey(options: { keyFile?: string; env?: NodeJS.ProcessEnv }): Promise<Buffer> {
  const env = options.env ?? process.env;
  const file = options.keyFile || env.GALLEY_SECRET_KEY_FILE;
  if (!file) {
    throw new GalleyError("SECRET_INVALID", "no secret key given", {
      hint: "pass --key-file FILE or set GALLEY_SECRET_KEY_FILE=FILE (create one with: galley secrets keygen --key-file FILE)",
    });
  }
  const from = options.keyFile ? "--key-file" : "GALLEY_SECRET_KEY_FILE";
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "r");
  } catch (error) {
    throw new GalleyError(
      "SECRET_INVALID",
      `cannot read the key file ${file} (from ${from}): ${reason(error)}`,
      {
        hint: "check the path, or create a key with: galley secrets keygen --key-file FILE",
      },
    );
  }
  try {
    // fstat of the open file: the mode checked is the mode of the bytes read
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new GalleyError("SECRET_INVALID", `the key file ${file} (from ${from}) is not a regular file`, {
        hint: "point --key-file or GALLEY_SECRET_KEY_FILE at the key file itself",
      });
    }
    if (process.platform !== "win32" && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, "0");
      throw new GalleyError(
        "SECRET_INVALID",
        `the key file ${file} has mode ${mode}: it is too open (group or others may access it)`,
        {
          hint: `make it private to its owner: chmod 600 ${file}`,
        },
      );
    }
    const key = trimEnd(await handle.readFile());
    if (key.length === 0) {
      throw new GalleyError("SECRET_INVALID", `the key file ${file} is empty`, {
        hint: "restore the key, or create a new one with: galley secrets keygen --key-file FILE",
      });
    }
    return key;
  } finally {
    await handle.close();
  }
}

// a key file edited in an editor gains a final newline; it must still be the same key
function trimEnd(data: Buffer): Buffer {
  let end = data.length;
  while (end > 0 && [0x20, 0x09, 0x0a, 0x0d].includes(data[end - 1]!)) end--;
  return data.subarray(0, end);
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "it does not exist";
  if (code === "EACCES") return "permission denied";
  return code ?? String(error);
}

/** Reads and decrypts an encrypted attributes file, and parses it as a YAML mapping (empty: `{}`). */
export async function loadSecretAttributes(file: string, key: Buffer): Promise<Record<string, unknown>> {
  const text = await fs.readFile(file, "utf8").catch(() => {
    throw new GalleyError("FILE_NOT_FOUND", `encrypted attributes file ${file} does not exist`, {
      hint: "check the path",
    });
  });
  return parseSecretAttributes(file, decrypt(text, key, file));
}

/**
 * Parses decrypted YAML into a mapping. Errors name the file and line only: never the text, which
 * is secret (so no YAML message, no excerpt and no cause is passed on).
 */
export function parseSecretAttributes(
  file: string,
  plaintext: string,
  what = "the decrypted content",
): Record<string, unknown> {
  const fail = (line: number | undefined) =>
    new GalleyError(
      "ATTRIBUTES_INVALID",
      `${file}: ${what} is not valid YAML${line ? ` at line ${line}` : ""}`,
      {
        hint: `fix it with: galley secrets edit ${file}`,
      },
    );
  let values: unknown;
  try {
    values = loadYaml(file, plaintext, { code: "ATTRIBUTES_INVALID", secret: true, allowNul: true }).value;
  } catch (error) {
    // the loader's message in secret mode is `file:line: …`: only the line is passed on
    const line = /^:(\d+): /.exec(isGalleyError(error) ? error.message.slice(file.length) : "")?.[1];
    throw fail(line === undefined ? undefined : Number(line));
  }
  if (values === undefined || values === null) return {};
  if (!isPlainObject(values)) {
    throw new GalleyError("ATTRIBUTES_INVALID", `${file}: ${what} must be a mapping of names to values`, {
      hint: `write top-level keys, e.g. \`db: { password: … }\`, with: galley secrets edit ${file}`,
    });
  }
  return values;
}
