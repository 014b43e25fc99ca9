import { request } from "node:https";
import type { FeedInput, Store } from "../store/store.ts";

// For the feed's tests and benchmark: a small server-sent events client over node:https (it parses
// the stream into events and comments, sends Last-Event-ID when asked, and keeps what an error
// response answered), and a simulated long job read through a stream that keeps being cut off.

/** One server-sent event. */
export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** An open event stream. */
export interface SseStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** every event received so far, in order */
  events: SseEvent[];
  /** comment lines received (": keepalive") */
  comments: string[];
  /** the `retry:` the server asked for */
  retry: number | undefined;
  /** the body of a response that is not a stream (an error) */
  text: string;
  /** resolves once `predicate` holds for the events received (rejects after `timeoutMs`) */
  until(predicate: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  /** resolves when the server ends the stream */
  ended: Promise<void>;
  /** called with each event as it arrives */
  onEvent?: ((event: SseEvent) => void) | undefined;
  close(): void;
}

/**
 * Opens `urlPath` on the server as an event stream; resolves once the response's headers came.
 *
 * @example const s = await openSse(server, "/v1/feed/stream?after=0", { token }); await s.until((e) => e.length >= 3)
 */
export function openSse(
  server: { url: string; caPem: string },
  urlPath: string,
  options: { token?: string; lastEventId?: string | number; headers?: Record<string, string> } = {},
): Promise<SseStream> {
  const headers: Record<string, string> = { accept: "text/event-stream", ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.lastEventId !== undefined) headers["last-event-id"] = String(options.lastEventId);
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${urlPath}`, { ca: server.caPem, headers, agent: false }, (res) => {
      const waiters = new Set<() => void>();
      let endResolve: () => void = () => {};
      const stream: SseStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events: [],
        comments: [],
        retry: undefined,
        text: "",
        ended: new Promise<void>((r) => {
          endResolve = r;
        }),
        until(predicate, timeoutMs = 10_000) {
          return new Promise((ok, fail) => {
            const check = () => {
              if (!predicate(stream.events)) return false;
              waiters.delete(check as () => void);
              clearTimeout(timer);
              ok(stream.events);
              return true;
            };
            const timer = setTimeout(() => {
              waiters.delete(check as () => void);
              fail(new Error(`timed out after ${timeoutMs} ms with ${stream.events.length} events`));
            }, timeoutMs);
            if (!check()) waiters.add(check as () => void);
          });
        },
        close() {
          req.destroy();
        },
      };
      const isStream = String(res.headers["content-type"] ?? "").startsWith("text/event-stream");
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (!isStream) {
          stream.text += chunk;
          return;
        }
        buffer += chunk;
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
          let id: string | undefined;
          let event: string | undefined;
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) stream.comments.push(line.slice(1).trim());
            else if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
            else if (line.startsWith("retry: ")) stream.retry = Number(line.slice(7));
          }
          if (data.length > 0) {
            const received = { id, event, data: data.join("\n") };
            stream.events.push(received);
            stream.onEvent?.(received);
          }
        }
        for (const check of [...waiters]) check();
      });
      const done = () => endResolve();
      res.on("end", done);
      res.on("close", done);
      res.on("error", done);
      if (isStream) resolve(stream);
      else res.on("end", () => resolve(stream));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Writes what a 20-minute job on `instances` hosts writes (a phase and a log line per step, with
 * times spread over 20 minutes), fast, in bursts, while a client reads the stream and is cut off
 * and reconnects (with Last-Event-ID) at random points; returns the ids written and received.
 */
export async function simulatedJob(
  server: { url: string; caPem: string; adminToken: string; ctx: { store: Store } },
  options: {
    instances: number;
    linesPerInstance: number;
    /** the longest pause between two bursts of entries (default 40 ms) */
    pauseMs?: number;
    /** default alpha */
    stack?: string;
    /** clients reading at once (default 1) */
    readers?: number;
  },
): Promise<{
  written: number[];
  received: number[];
  reconnects: number;
  whileWriting: number;
  readers: { received: number[]; reconnects: number; whileWriting: number }[];
}> {
  const store = server.ctx.store;
  const stack = options.stack ?? "alpha";
  const start = Date.parse("2026-12-04T03:00:00.000Z");
  const minutes = 20;
  const total = options.instances * options.linesPerInstance;
  const entries: FeedInput[] = [];
  for (let step = 0; step < options.linesPerInstance; step++)
    for (let i = 0; i < options.instances; i++) {
      const at = new Date(start + ((step * options.instances + i) / total) * minutes * 60_000).toISOString();
      const instance = `app${String(i + 1).padStart(3, "0")}`;
      entries.push(
        step % 2 === 0
          ? {
              stack,
              kind: "phase",
              subject: "deployment:1",
              at,
              data: { instance, phase: "converging", done: step, total: options.linesPerInstance },
            }
          : {
              stack,
              kind: "log",
              subject: "deployment:1",
              at,
              data: { instance, line: `${instance}: file[/etc/app/${step}.conf] updated` },
            },
      );
    }
  const start0 = await store.lastFeedId();
  // once the writing ended, the readers have this long to catch up (a lost entry must not hang them)
  let deadline = Number.POSITIVE_INFINITY;
  let writing = true;
  // each reader is cut off at random points and resumes: the first by Last-Event-ID (as EventSource
  // does), the next by ?after= (as a page that reopens by hand), and so on
  const read = async (index: number) => {
    const received: number[] = [];
    let lastId = start0;
    let reconnects = 0;
    let whileWriting = 0;
    while (writing || (received.length < total && Date.now() < deadline)) {
      const byHeader = index % 2 === 0;
      const stream = await openSse(
        server,
        `/v1/stacks/${stack}/feed/stream?subject=deployment:1${byHeader ? "" : `&after=${lastId}`}`,
        { token: server.adminToken, ...(byHeader ? { lastEventId: lastId } : {}) },
      );
      if (stream.status !== 200) throw new Error(`the stream answered ${stream.status}: ${stream.text}`);
      stream.onEvent = (event) => {
        received.push(Number(event.id));
        lastId = Number(event.id);
      };
      // cut off at a random point: after some events, or some time
      const cutAfter = received.length + 200 + Math.floor(Math.random() * 1500);
      await Promise.race([
        stream
          .until(() => received.length >= cutAfter || (!writing && received.length >= total), 3000)
          .catch(() => {}),
        new Promise((r) => setTimeout(r, 20 + Math.random() * 300)),
      ]);
      stream.close();
      await stream.ended;
      if (received.length >= total && !writing) break;
      reconnects++;
      if (writing) whileWriting++;
      await new Promise((r) => setTimeout(r, Math.random() * 50));
    }
    return { received, reconnects, whileWriting };
  };
  const readers = Array.from({ length: options.readers ?? 1 }, (_, index) => read(index));
  const written: number[] = [];
  // bursts of 50–600 entries, as hosts report together, with short pauses
  for (let i = 0; i < entries.length; ) {
    const size = 50 + Math.floor(Math.random() * 550);
    const batch = entries.slice(i, i + size);
    i += batch.length;
    written.push(...(await store.appendFeed(batch)).map((e) => e.id));
    await new Promise((r) => setTimeout(r, Math.random() * (options.pauseMs ?? 40)));
  }
  deadline = Date.now() + 10_000;
  writing = false;
  const results = await Promise.all(readers);
  const first = results[0]!;
  return { written, ...first, readers: results };
}
