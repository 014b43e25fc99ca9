import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import { type Change, defineResourceType, described, pathSchema } from "../core/resource.ts";
import {
  applyFile,
  diffAttributes,
  fileProperties,
  type FileState,
  pathRequires,
  readFileState,
  sha256,
} from "./filestate.ts";

const schema = v.strictObject({
  path: pathSchema("absolute path of the file (defaults to the resource name)"),
  source: described(
    v.pipe(
      v.string(),
      v.check(
        (value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol),
        "an http:// or https:// URL",
      ),
    ),
    "URL to download from, on the machine running Galley (redirects are followed; https trusts the system CAs plus NODE_EXTRA_CA_CERTS)",
  ),
  checksum: v.pipe(
    v.string(),
    v.regex(/^[0-9a-fA-F]{64}$/, "a sha256 in hex (64 characters)"),
    v.description(
      "sha256 of the expected content, in hex: the file is downloaded only when the host's copy differs, and the download must match it",
    ),
    v.transform((value) => value.toLowerCase()),
  ),
  ...fileProperties,
  headers: v.optional(
    described(
      v.record(v.string(), v.string()),
      "HTTP request headers, e.g. Authorization (sensitive: never logged)",
    ),
  ),
  timeout: v.optional(
    described(v.pipe(v.number(), v.gtValue(0)), "seconds the whole download may take"),
    300,
  ),
});

type Props = v.InferOutput<typeof schema>;

/** A file downloaded over http(s) whose content is pinned by its sha256. */
export const remoteFile = defineResourceType<typeof schema, FileState>({
  type: "remote_file",
  description:
    "A file downloaded over http or https, pinned by its sha256 `checksum`: downloaded (on the machine running Galley) only when the host's copy is missing or differs, verified before it is written, then written atomically with mode, owner and group.",
  actions: ["create"],
  schema,
  nameProperty: "path",
  sensitiveProperties: ["headers"],

  key: (props) => props.path,

  autoRequires: pathRequires,

  async read(host, props) {
    const state = await readFileState(host, props.path, false);
    if (state?.type !== "file") return state;
    return { ...state, sha256: await fileSha256(host, props.path) };
  },

  diff(current, desired) {
    const content: Change = {
      property: "content",
      from: current?.sha256 && `sha256:${current.sha256.slice(0, 12)}`,
      to: `sha256:${desired.checksum.slice(0, 12)}`,
    };
    if (!current) {
      return [
        { property: "ensure", from: "absent", to: "file" },
        content,
        ...diffAttributes(undefined, desired),
      ];
    }
    if (current.type !== "file") return [{ property: "type", from: current.type, to: "file" }];
    return [...(current.sha256 === desired.checksum ? [] : [content]), ...diffAttributes(current, desired)];
  },

  async apply(host, desired, _action, current, context) {
    const backup = desired.backup === false ? 0 : desired.backup;
    const file = {
      path: desired.path,
      mode: desired.mode,
      owner: desired.owner,
      group: desired.group,
      backup,
    };
    // in state but for attributes, or not a file (applyFile refuses): no download
    if (current && (current.type !== "file" || current.sha256 === desired.checksum)) {
      return applyFile(host, file, current, context);
    }
    const content = await download(desired);
    // read content only now, for the backup: read does not transfer the whole file
    const old = current?.type === "file" && backup > 0 ? await host.readFile(desired.path) : undefined;
    await applyFile(host, { ...file, content }, current && { ...current, content: old }, context);
  },
});

/** sha256 of a file on the host: `sha256sum` there, so a large file is not transferred to compare. */
async function fileSha256(host: Host, path: string): Promise<string | undefined> {
  const result = await host.exec(["sha256sum", "--", path]);
  const hash = result.exitCode === 0 ? /^[0-9a-f]{64}/.exec(result.stdout)?.[0] : undefined;
  if (hash) return hash;
  const data = await host.readFile(path);
  return data && sha256(data);
}

/** Downloads the source and returns its bytes only when they match the checksum. */
async function download(props: Props): Promise<Uint8Array> {
  const where = `remote_file[${props.path}]`;
  let response: Response;
  let data: Uint8Array;
  try {
    response = await fetch(props.source, {
      redirect: "follow",
      signal: AbortSignal.timeout(props.timeout * 1000),
      ...(props.headers ? { headers: props.headers } : {}),
    });
    data = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    const reason =
      error instanceof DOMException && error.name === "TimeoutError"
        ? `timed out after ${props.timeout} s`
        : describeFetchError(error);
    throw new GalleyError("APPLY_FAILED", `${where}: downloading ${props.source} failed: ${reason}`, {
      hint: "check the URL and that this machine can reach it (proxy, firewall, certificate)",
      cause: error,
    });
  }
  if (!response.ok) {
    throw new GalleyError(
      "APPLY_FAILED",
      `${where}: downloading ${props.source} failed: HTTP ${response.status} ${response.statusText}`.trim(),
      { hint: response.status === 404 ? "check the URL" : "check the URL, the headers and the server" },
    );
  }
  const actual = sha256(data);
  if (actual !== props.checksum) {
    throw new GalleyError(
      "APPLY_FAILED",
      `${where}: checksum mismatch for ${props.source}: expected sha256 ${props.checksum}, got ${actual}; the file was not written`,
      {
        hint: `if the new content is the one you want, set checksum to "${actual}"; else find out why the server's content changed`,
      },
    );
  }
  return data;
}

/** fetch wraps network errors as "fetch failed": the cause says what really happened. */
function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message)
    return cause.code && !cause.message.includes(cause.code)
      ? `${cause.code}: ${cause.message}`
      : cause.message;
  return error instanceof Error ? error.message : String(error);
}
