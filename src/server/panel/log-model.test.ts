import assert from "node:assert/strict";
import { test } from "node:test";
import {
  atBottom,
  type LogFeedEntry,
  type LogLoader,
  LogModel,
  pagesOf,
  visibleRange,
} from "./ui/log-model.ts";

// a subject's log as the feed API pages it: ids 10, 12, 14, … (other subjects' entries in between)
function feed(count: number, calls: Record<string, string>[] = []) {
  const entries: LogFeedEntry[] = Array.from({ length: count }, (_, i) => logEntry(10 + 2 * i));
  const load: LogLoader = async (q) => {
    calls.push(q);
    let list = entries.filter((e) => q.before === undefined || e.id < Number(q.before));
    const total = list.length;
    if (q.order === "desc") list = [...list].reverse();
    const offset = Number(q.offset ?? 0);
    list = list.slice(offset, offset + Number(q.limit ?? 500));
    return { entries: list, ...(q.total === "1" ? { total } : {}) };
  };
  return { entries, load, calls };
}

function logEntry(id: number, instance = "web1"): LogFeedEntry {
  return { id, kind: "log", data: { line: `line ${id}`, instance } };
}

test("visibleRange: the rows in view with overscan, clamped to the log", () => {
  assert.deepEqual(visibleRange(0, 200, 20, 1000, 5), { first: 0, end: 16 });
  assert.deepEqual(visibleRange(2000, 200, 20, 1000, 5), { first: 95, end: 116 });
  // at the end: as many rows as elsewhere
  assert.deepEqual(visibleRange(19_800, 200, 20, 1000, 5), { first: 984, end: 1000 });
  assert.deepEqual(visibleRange(0, 200, 20, 3, 5), { first: 0, end: 3 });
  assert.deepEqual(visibleRange(0, 200, 20, 0, 5), { first: 0, end: 0 });
});

test("pagesOf: the pages that hold a range", () => {
  assert.deepEqual(pagesOf(0, 16, 200), [0]);
  assert.deepEqual(pagesOf(190, 216, 200), [0, 1]);
  assert.deepEqual(pagesOf(400, 400, 200), []);
});

test("atBottom: within one row of the end", () => {
  assert.equal(atBottom(1800, 200, 2000, 20), true);
  assert.equal(atBottom(1785, 200, 2000, 20), true);
  assert.equal(atBottom(1700, 200, 2000, 20), false);
});

test("LogModel.open: counts the log and loads its last page, nothing else", async () => {
  const { load, calls } = feed(100_000);
  const model = new LogModel(load);
  await model.open();
  assert.equal(model.total, 100_000);
  assert.equal(model.row(99_999)?.id, 10 + 2 * 99_999);
  assert.equal(model.row(99_800)?.line, `line ${10 + 2 * 99_800}`);
  assert.equal(model.row(99_799), undefined);
  assert.equal(calls.length, 2);
  assert.equal(model.size, 200);
});

test("LogModel.need: fetches the missing pages of a range by offset, once", async () => {
  const { load, calls } = feed(1000);
  const model = new LogModel(load, { pageSize: 100 });
  await model.open();
  calls.length = 0;
  await Promise.all([model.need(150, 260), model.need(150, 260)]);
  assert.deepEqual(
    calls.map((c) => c.offset),
    ["100", "200"],
  );
  assert.equal(model.row(150)?.id, 10 + 2 * 150);
  assert.equal(model.row(299)?.id, 10 + 2 * 299);
  calls.length = 0;
  await model.need(950, 1000);
  assert.equal(calls.length, 0, "the last page came with open");
});

test("LogModel.append: streamed lines past the count, each once, in order; counted ones skipped", async () => {
  const { load, entries } = feed(10);
  const model = new LogModel(load);
  const early = logEntry(31);
  model.append([entries[9]!, early]); // before open: kept until the count is known
  await model.open();
  assert.equal(model.total, 11);
  assert.equal(model.row(10)?.id, 31);
  let changes = 0;
  model.onChange = () => {
    changes += 1;
  };
  model.append([logEntry(31), logEntry(33), { id: 34, kind: "phase", data: {} }, logEntry(35)]);
  model.append([logEntry(33)]);
  assert.equal(model.total, 13);
  assert.deepEqual([model.row(11)?.id, model.row(12)?.id], [33, 35]);
  assert.equal(changes, 1);
});

test("LogModel: an empty log appends everything streamed", async () => {
  const { load } = feed(0);
  const model = new LogModel(load);
  await model.open();
  assert.equal(model.total, 0);
  model.append([logEntry(5), logEntry(7)]);
  assert.equal(model.total, 2);
  assert.equal(model.row(0)?.id, 5);
});

test("LogModel: a line written between the two open reads is counted once", async () => {
  const base = feed(5);
  let first = true;
  const load: LogLoader = async (q) => {
    const answer = await base.load(q);
    // the newest line is read, then another is written before the count
    if (first) base.entries.push(logEntry(100));
    first = false;
    return answer;
  };
  const model = new LogModel(load);
  await model.open();
  assert.equal(model.total, 5);
  model.append([logEntry(100)]);
  assert.equal(model.total, 6);
  assert.equal(model.row(5)?.id, 100);
});

test("LogModel: rows far from the viewport are dropped past `keep`, and fetched again", async () => {
  const { load } = feed(10_000);
  const model = new LogModel(load, { pageSize: 100, keep: 400 });
  await model.open();
  for (let first = 0; first < 2000; first += 100) await model.need(first, first + 100);
  assert.ok(model.size <= 2100);
  await model.need(0, 50);
  assert.ok(model.size <= 600, `kept ${model.size}`);
  assert.equal(model.row(9999), undefined);
  await model.need(9950, 10_000);
  assert.equal(model.row(9999)?.id, 10 + 2 * 9999);
});
