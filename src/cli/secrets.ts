import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import { decodeYamlText } from "../core/yaml.ts";
import {
  decrypt,
  encrypt,
  generateKey,
  isEncrypted,
  parseSecretAttributes,
  readKey,
} from "../secrets/vault.ts";
import { writeJson } from "./output.ts";

const options = {
  "key-file": {
    type: "string",
    description: "the secret key file (default: $GALLEY_SECRET_KEY_FILE)",
  },
  out: {
    type: "string",
    description: "decrypt: write the clear text to this file, or - for stdout (default: in place)",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface Values {
  "key-file"?: string;
  out?: string;
  json: boolean;
}

const subcommands = {
  keygen: keygen,
  encrypt: encryptFile,
  decrypt: decryptFile,
  view: view,
  edit: edit,
} as const;

/** `galley secrets keygen|encrypt|decrypt|view|edit`: encrypted attribute files (see docs/secrets.md). */
export const secretsCommand = {
  summary: "encrypted attribute files: keygen, encrypt, decrypt, view, edit",
  usage:
    "keygen --key-file FILE | encrypt FILE | decrypt FILE [--out FILE|-] | view FILE | edit FILE   [--key-file FILE] [--json]",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [name, ...args] = positionals;
    const subcommand = subcommands[name as keyof typeof subcommands];
    if (!subcommand) {
      throw new GalleyError(
        "USAGE",
        name === undefined
          ? "galley secrets: which subcommand?"
          : `galley secrets: unknown subcommand "${name}"`,
        { hint: `subcommands: ${Object.keys(subcommands).join(", ")}; see: galley secrets --help` },
      );
    }
    if (values.out !== undefined && name !== "decrypt") {
      throw new GalleyError("USAGE", `galley secrets ${name}: --out is an option of decrypt only`, {
        hint: "see: galley secrets --help",
      });
    }
    const wanted = name === "keygen" ? 0 : 1;
    if (args.length !== wanted) {
      throw new GalleyError(
        "USAGE",
        `galley secrets ${name}: expected ${wanted === 0 ? "no FILE" : "one FILE"}`,
        {
          hint: `usage: galley secrets ${name === "keygen" ? "keygen --key-file FILE" : `${name} FILE`}`,
        },
      );
    }
    await subcommand(values, args[0]!);
    return exitCodes.ok;
  },
};

async function keygen(values: Values): Promise<void> {
  const file = values["key-file"] || process.env.GALLEY_SECRET_KEY_FILE;
  if (!file) {
    throw new GalleyError("USAGE", "galley secrets keygen: where should the key go?", {
      hint: "pass --key-file FILE (or set GALLEY_SECRET_KEY_FILE=FILE)",
    });
  }
  await writeNew(file, `${generateKey()}\n`);
  done(
    values,
    { keyFile: file },
    `wrote a new secret key to ${file} (mode 0600): keep it out of version control`,
  );
}

async function encryptFile(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
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
  await writeAtomic(file, encrypt(text, key));
  done(values, { file }, `encrypted ${file}`);
}

async function decryptFile(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
  const plaintext = decrypt(await readInput(file), key, file);
  if (values.out === "-") {
    process.stdout.write(plaintext);
    return;
  }
  const out = values.out ?? file;
  // clear text is for its owner only, whatever the encrypted file's mode was
  await writeAtomic(out, plaintext, 0o600);
  done(values, { file, out }, `decrypted ${file} into ${out}: it is clear text now, do not commit it`);
}

async function view(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
  const plaintext = decrypt(await readInput(file), key, file);
  if (values.json) writeJson({ status: "ok", file, content: plaintext });
  else process.stdout.write(plaintext);
}

async function edit(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
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
    const editor = process.env.VISUAL || process.env.EDITOR || "vi";
    const status = await runEditor(editor, draft);
    const edited = await fs.readFile(draft, "utf8");
    if (status !== 0) {
      keep = edited !== original;
      throw new GalleyError(
        "EXEC_FAILED",
        `the editor (${editor}) exited with status ${status}: ${file} was not changed`,
        {
          hint: keep
            ? `your edit is kept in ${draft}; delete ${dir} when done with it`
            : "fix the editor ($VISUAL or $EDITOR) and run again",
        },
      );
    }
    if (edited === original) {
      done(values, { file, changed: false }, `${file} unchanged`);
      return;
    }
    try {
      parseSecretAttributes(file, edited, "the edited content");
    } catch (error) {
      keep = true;
      const e = error as GalleyError;
      throw new GalleyError(e.code, `${e.message}: ${file} was not changed`, {
        hint: `your edit is kept in ${draft}: copy what you need from it, run galley secrets edit ${file} again, then delete ${dir}`,
      });
    }
    await writeAtomic(file, encrypt(edited, key));
    done(values, { file, changed: true }, `encrypted ${file} (changed)`);
  } finally {
    if (!keep) await fs.rm(dir, { recursive: true, force: true });
  }
}

function keyOptions(values: Values): { keyFile?: string; env: NodeJS.ProcessEnv } {
  return values["key-file"] ? { keyFile: values["key-file"], env: process.env } : { env: process.env };
}

function done(values: Values, fields: Record<string, unknown>, message: string): void {
  if (values.json) writeJson({ status: "ok", ...fields });
  else process.stdout.write(`${message}\n`);
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

// like git: the editor is a shell command line ("code --wait" works); Ctrl-C belongs to the editor
async function runEditor(editor: string, file: string): Promise<number> {
  const ignore = () => {};
  process.on("SIGINT", ignore);
  process.on("SIGQUIT", ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn("sh", ["-c", `${editor} "$@"`, editor, file], { stdio: "inherit" });
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    process.off("SIGINT", ignore);
    process.off("SIGQUIT", ignore);
  }
}

/** Replaces `file` atomically (temp file beside it, then rename) with `mode`, else its own mode, else 0600. */
async function writeAtomic(file: string, text: string, mode?: number): Promise<void> {
  const current = (await fs.stat(file).catch(() => undefined))?.mode;
  const temp = await writeTemp(file, text, mode ?? (current === undefined ? 0o600 : current & 0o7777));
  await fs.rename(temp, file).catch(async (error) => {
    await fs.rm(temp, { force: true });
    throw error;
  });
}

/** Creates `file` atomically with mode 0600, refusing to replace anything (link fails on an existing name). */
async function writeNew(file: string, text: string): Promise<void> {
  const temp = await writeTemp(file, text, 0o600);
  try {
    await fs.link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new GalleyError("USAGE", `${file} already exists: a key is never overwritten`, {
        hint: "files encrypted with it could no longer be read; choose another path, or delete it yourself if it is unused",
      });
    }
    throw error;
  } finally {
    await fs.rm(temp, { force: true });
  }
}

async function writeTemp(file: string, text: string, mode: number): Promise<string> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(temp, "wx", mode);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new GalleyError(
      code === "ENOENT" ? "FILE_NOT_FOUND" : "SECRET_INVALID",
      `cannot write ${file}: ${code === "ENOENT" ? "its folder does not exist" : (code ?? String(error))}`,
      { hint: "check the path and the folder's permissions" },
    );
  }
  try {
    await handle.writeFile(text, "utf8");
    // umask may have cleared bits of a kept mode; chmod sets it exactly
    await handle.chmod(mode);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  return temp;
}
