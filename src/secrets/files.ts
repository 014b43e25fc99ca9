import * as fs from "node:fs/promises";
import * as path from "node:path";
import { existsSync, statSync } from "node:fs";
import * as os from "node:os";
import { GalleyError } from "../core/errors.ts";
import { decodeYamlText } from "../core/yaml.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";
import { decrypt, encrypt, generateKey, isEncrypted, parseSecretAttributes } from "./vault.ts";

// `galley secrets keygen|encrypt|decrypt|view|edit` as functions of plain arguments that return
// data: the CLI parses and prints; an HTTP API calls the same. Every write is atomic.

/**
 * Writes a new secret key to `file` (mode 0600); an existing file is never replaced.
 *
 * @example await createKeyFile("~/.config/galley/secret.key")
 */
export async function createKeyFile(file: string): Promise<{ keyFile: string }> {
  await writeSecretFile(file, `${generateKey()}\n`, { mode: 0o600, exclusive: true });
  return { keyFile: file };
}

/** Encrypts the clear-text attribute file `file` in place, after checking it is what apply accepts. */
export async function encryptSecretsFile(file: string, key: Buffer): Promise<{ file: string }> {
  const text = await readInput(file, "ATTRIBUTES_INVALID");
  if (isEncrypted(text)) {
    throw new GalleyError("SECRET_INVALID", `${file} is already encrypted`, {
      hint: `change it with: galley secrets edit ${file}`,
    });
  }
  // refuse now what apply would refuse later, while the file is still readable
  try {
    parseSecretAttributes(file, text, "the content");
  } catch (error) {
    // the file is clear text still: `secrets edit` would only refuse it as not encrypted
    const e = error as GalleyError;
    throw new GalleyError(e.code, e.message, {
      hint: `fix ${file} with any editor (it is not encrypted yet), then run: galley secrets encrypt ${file}`,
    });
  }
  await writeSecretFile(file, encrypt(text, key));
  return { file };
}

/** The clear text of the encrypted file `file`. */
export async function readSecretsFile(file: string, key: Buffer): Promise<string> {
  return decrypt(await readInput(file), key, file);
}

/** Decrypts `file` into `out` (default: in place), mode 0600 whatever the encrypted file's mode was. */
export async function decryptSecretsFile(
  file: string,
  key: Buffer,
  out: string = file,
): Promise<{ file: string; out: string }> {
  const plaintext = await readSecretsFile(file, key);
  // clear text is for its owner only
  await writeSecretFile(out, plaintext, { mode: 0o600 });
  return { file, out };
}

/**
 * Replaces the content of the encrypted file `file` with `text` (checked as apply would check it),
 * encrypted; a new file is created 0600, an existing one keeps its mode.
 */
export async function writeSecretsFile(file: string, key: Buffer, text: string): Promise<{ file: string }> {
  parseSecretAttributes(file, text, "the content");
  await writeSecretFile(file, encrypt(text, key));
  return { file };
}

/** How `editSecretsFile` lets someone edit the clear text: `edit(draft)` returns the editor's exit status. */
export interface SecretsEditor {
  /** how errors name the editor, e.g. "vi" */
  name: string;
  edit(draft: string): Promise<number>;
}

/**
 * `galley secrets edit`: decrypts `file` (or starts empty) into a private draft in memory
 * (/dev/shm when there is one), lets `editor` change it, checks the result, and encrypts it back.
 * A failed editor or an invalid edit leaves `file` as it was; an edit worth keeping stays in its
 * draft, named in the error.
 */
export async function editSecretsFile(
  file: string,
  key: Buffer,
  editor: SecretsEditor,
): Promise<{ file: string; changed: boolean }> {
  const exists = existsSync(file);
  if (!exists && !existsSync(path.dirname(path.resolve(file)))) {
    throw new GalleyError("FILE_NOT_FOUND", `the folder of ${file} does not exist`, {
      hint: "create the folder first, or check the path",
    });
  }
  const original = exists ? decrypt(await readInput(file), key, file) : "";
  const dir = await privateTempDir();
  const draft = path.join(dir, path.basename(file));
  let keep = false;
  try {
    await fs.writeFile(draft, original, { mode: 0o600 });
    const status = await editor.edit(draft);
    const edited = await fs.readFile(draft, "utf8");
    if (status !== 0) {
      keep = edited !== original;
      throw new GalleyError(
        "EXEC_FAILED",
        `the editor (${editor.name}) exited with status ${status}: ${file} was not changed`,
        {
          hint: keep
            ? `your edit is kept in ${draft}; delete ${dir} when done with it`
            : "fix the editor ($VISUAL or $EDITOR) and run again",
        },
      );
    }
    if (edited === original) return { file, changed: false };
    try {
      parseSecretAttributes(file, edited, "the edited content");
    } catch (error) {
      keep = true;
      const e = error as GalleyError;
      throw new GalleyError(e.code, `${e.message}: ${file} was not changed`, {
        hint: `your edit is kept in ${draft}: copy what you need from it, run galley secrets edit ${file} again, then delete ${dir}`,
      });
    }
    await writeSecretFile(file, encrypt(edited, key));
    return { file, changed: true };
  } finally {
    if (!keep) await fs.rm(dir, { recursive: true, force: true });
  }
}

async function readInput(
  file: string,
  code: "ATTRIBUTES_INVALID" | "SECRET_INVALID" = "SECRET_INVALID",
): Promise<string> {
  const bytes = await fs.readFile(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") {
      throw new GalleyError("FILE_NOT_FOUND", `${file} does not exist`, { hint: "check the path" });
    }
    throw new GalleyError("SECRET_INVALID", `cannot read ${file}: ${error.code ?? error.message}`, {
      hint: "check that it is a readable file",
    });
  });
  // a file in another encoding would be encrypted with its characters replaced, and lost
  return decodeYamlText(file, bytes, { code });
}

/**
 * Replaces `file` atomically with `mode`, else its own mode, else 0600; `exclusive` refuses an
 * existing file (a key is never overwritten).
 */
async function writeSecretFile(
  file: string,
  text: string,
  options: { mode?: number; exclusive?: boolean } = {},
): Promise<void> {
  const current = (await fs.stat(file).catch(() => undefined))?.mode;
  const mode = options.mode ?? (current === undefined ? 0o600 : current & 0o7777);
  try {
    await writeFileAtomic(file, text, { mode, exclusive: options.exclusive });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && options.exclusive) {
      throw new GalleyError("USAGE", `${file} already exists: a key is never overwritten`, {
        hint: "files encrypted with it could no longer be read; choose another path, or delete it yourself if it is unused",
      });
    }
    throw new GalleyError(
      code === "ENOENT" ? "FILE_NOT_FOUND" : "SECRET_INVALID",
      `cannot write ${file}: ${code === "ENOENT" ? "its folder does not exist" : (code ?? String(error))}`,
      { hint: "check the path and the folder's permissions" },
    );
  }
}

// /dev/shm is memory: the clear text being edited never reaches a disk
async function privateTempDir(): Promise<string> {
  const shm = "/dev/shm";
  const base = statSync(shm, { throwIfNoEntry: false })?.isDirectory() ? shm : os.tmpdir();
  const dir = await fs
    .mkdtemp(path.join(base, "galley-secrets-"))
    .catch(() => fs.mkdtemp(path.join(os.tmpdir(), "galley-secrets-")));
  await fs.chmod(dir, 0o700);
  return dir;
}
