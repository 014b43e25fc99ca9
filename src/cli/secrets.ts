import { spawn } from "node:child_process";
import { exitCodes, GalleyError } from "../core/errors.ts";
import {
  createKeyFile,
  decryptSecretsFile,
  editSecretsFile,
  encryptSecretsFile,
  readSecretsFile,
} from "../secrets/files.ts";
import { readKey } from "../secrets/vault.ts";
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
  await createKeyFile(file);
  done(
    values,
    { keyFile: file },
    `wrote a new secret key to ${file} (mode 0600): keep it out of version control`,
  );
}

async function encryptFile(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
  await encryptSecretsFile(file, key);
  done(values, { file }, `encrypted ${file}`);
}

async function decryptFile(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
  if (values.out === "-") {
    process.stdout.write(await readSecretsFile(file, key));
    return;
  }
  const { out } = await decryptSecretsFile(file, key, values.out ?? file);
  done(values, { file, out }, `decrypted ${file} into ${out}: it is clear text now, do not commit it`);
}

async function view(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
  const plaintext = await readSecretsFile(file, key);
  if (values.json) writeJson({ status: "ok", file, content: plaintext });
  else process.stdout.write(plaintext);
}

async function edit(values: Values, file: string): Promise<void> {
  const key = await readKey(keyOptions(values));
  const editor = process.env.VISUAL || process.env.EDITOR || "vi";
  const { changed } = await editSecretsFile(file, key, {
    name: editor,
    edit: (draft) => runEditor(editor, draft),
  });
  if (changed) done(values, { file, changed: true }, `encrypted ${file} (changed)`);
  else done(values, { file, changed: false }, `${file} unchanged`);
}

function keyOptions(values: Values): { keyFile?: string; env: NodeJS.ProcessEnv } {
  return values["key-file"] ? { keyFile: values["key-file"], env: process.env } : { env: process.env };
}

function done(values: Values, fields: Record<string, unknown>, message: string): void {
  if (values.json) writeJson({ status: "ok", ...fields });
  else process.stdout.write(`${message}\n`);
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
