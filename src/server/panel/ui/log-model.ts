// The data behind the virtualized log (log-view.ts), without the DOM: a subject's log lines by
// position (0 = oldest), a page of them fetched by offset when the viewport needs it, lines that
// arrive on the stream appended after the last one counted when the log was opened.

/** A feed entry as the feed API returns it (only what the log reads). */
export interface LogFeedEntry {
  id: number;
  kind?: string;
  data: unknown;
}

/** One log line at its position. */
export interface LogLine {
  id: number;
  line: string;
  instance?: string | undefined;
}

/** What the feed JSON answers: entries, and the count when asked with total=1. */
export interface LogFeedPage {
  entries: LogFeedEntry[];
  total?: number | undefined;
}

/** Reads the subject's log entries with these paging parameters (order, offset, before, limit, total). */
export type LogLoader = (paging: Record<string, string>) => Promise<LogFeedPage>;

/** A log entry's line and instance; entries that are not log lines are undefined. */
export function logLineOf(entry: LogFeedEntry): LogLine | undefined {
  if (entry.kind !== undefined && entry.kind !== "log") return undefined;
  const data = entry.data as { line?: unknown; instance?: unknown } | null;
  if (!data || typeof data.line !== "string") return undefined;
  return {
    id: entry.id,
    line: data.line,
    ...(typeof data.instance === "string" ? { instance: data.instance } : {}),
  };
}

/** The rows a viewport shows, with `overscan` rows either side: [first, end) within [0, total). */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  total: number,
  overscan: number,
): { first: number; end: number } {
  const top = Math.max(0, Math.floor(scrollTop / rowHeight));
  const rows = Math.ceil(viewportHeight / rowHeight) + 1;
  const first = Math.max(0, Math.min(top - overscan, total - rows - overscan));
  const end = Math.min(total, top + rows + overscan);
  return { first: Math.max(0, Math.min(first, end)), end };
}

/** The pages (of `pageSize` rows) that hold rows [first, end). */
export function pagesOf(first: number, end: number, pageSize: number): number[] {
  const pages: number[] = [];
  if (end <= first) return pages;
  for (let page = Math.floor(first / pageSize); page <= Math.floor((end - 1) / pageSize); page += 1)
    pages.push(page);
  return pages;
}

/** Whether a scroll position is at the end (within one row): the view then follows new lines. */
export function atBottom(scrollTop: number, viewportHeight: number, scrollHeight: number, rowHeight: number) {
  return scrollTop + viewportHeight >= scrollHeight - rowHeight;
}

/**
 * A subject's log by position. `open` counts the lines up to the newest one (the boundary) and
 * loads the last page; `append` adds streamed lines past the boundary once each (by id), in
 * order; `need` fetches the pages a range lacks. `onChange` runs after each change.
 */
export class LogModel {
  readonly pageSize: number;
  /** rows kept in memory at most (pages far from the viewport are dropped, and fetched again) */
  readonly keep: number;
  onChange: () => void = () => {};
  /** lines known: counted at open, and appended since */
  total = 0;
  opened = false;
  readonly #load: LogLoader;
  /** ids below it were counted at open; streamed lines from it on are appended */
  #boundary = 0;
  #lastAppended = 0;
  readonly #rows = new Map<number, LogLine>();
  readonly #pending: LogFeedEntry[] = [];
  readonly #loading = new Set<number>();

  constructor(load: LogLoader, options: { pageSize?: number; keep?: number } = {}) {
    this.#load = load;
    this.pageSize = options.pageSize ?? 200;
    this.keep = Math.max(options.keep ?? 20_000, this.pageSize * 4);
  }

  /** Counts the log and loads its last page. */
  async open(): Promise<void> {
    const newest = await this.#load({ order: "desc", limit: "1" });
    const head = newest.entries[0];
    if (head) {
      this.#boundary = head.id + 1;
      const tail = await this.#load({
        order: "desc",
        before: String(this.#boundary),
        limit: String(this.pageSize),
        total: "1",
      });
      this.total = tail.total ?? tail.entries.length;
      tail.entries.forEach((entry, i) => {
        const line = logLineOf(entry);
        if (line) this.#rows.set(this.total - 1 - i, line);
      });
    }
    this.opened = true;
    this.#lastAppended = this.#boundary - 1;
    const pending = this.#pending.splice(0);
    this.append(pending, false);
    this.onChange();
  }

  /** Adds streamed entries: log lines not counted yet, each once; others are ignored. */
  append(entries: readonly LogFeedEntry[], notify = true): void {
    if (!this.opened) {
      this.#pending.push(...entries);
      return;
    }
    let added = false;
    for (const entry of entries) {
      if (entry.id < this.#boundary || entry.id <= this.#lastAppended) continue;
      const line = logLineOf(entry);
      if (!line) continue;
      this.#rows.set(this.total, line);
      this.total += 1;
      this.#lastAppended = entry.id;
      added = true;
    }
    if (added && notify) this.onChange();
  }

  /** The line at a position, when loaded. */
  row(position: number): LogLine | undefined {
    return this.#rows.get(position);
  }

  /** How many rows are in memory. */
  get size(): number {
    return this.#rows.size;
  }

  /** Fetches the pages of [first, end) that lack a row (each page once at a time); drops far ones. */
  need(first: number, end: number): Promise<void> {
    const wanted = pagesOf(first, Math.min(end, this.total), this.pageSize).filter(
      (page) => !this.#loading.has(page) && !this.#complete(page),
    );
    this.#evict(first, end);
    return Promise.all(wanted.map((page) => this.#fetch(page))).then(() => {});
  }

  #complete(page: number): boolean {
    const end = Math.min(this.total, (page + 1) * this.pageSize);
    for (let position = page * this.pageSize; position < end; position += 1)
      if (!this.#rows.has(position)) return false;
    return true;
  }

  async #fetch(page: number): Promise<void> {
    this.#loading.add(page);
    try {
      const offset = page * this.pageSize;
      const answer = await this.#load({ order: "asc", offset: String(offset), limit: String(this.pageSize) });
      answer.entries.forEach((entry, i) => {
        const position = offset + i;
        const line = logLineOf(entry);
        // past the count: a line the stream brings (in order) rather than this page
        if (line && position < this.total && !this.#rows.has(position)) this.#rows.set(position, line);
      });
    } finally {
      this.#loading.delete(page);
    }
    this.onChange();
  }

  #evict(first: number, end: number): void {
    if (this.#rows.size <= this.keep) return;
    const margin = Math.floor(this.keep / 4);
    for (const position of this.#rows.keys())
      if (position < first - margin || position >= end + margin) this.#rows.delete(position);
  }
}
