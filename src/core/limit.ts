/**
 * A concurrency limiter: at most `size` tasks run at once, the rest wait in order.
 *
 * @example const run = limit(8); await Promise.all(paths.map((p) => run(() => host.stat(p))));
 */
export function limit(size: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  const next = () => {
    const waiter = waiting.shift();
    // a waiter inherits the finished task's slot; only an unclaimed slot is freed
    if (waiter) waiter();
    else active -= 1;
  };
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= size) await new Promise<void>((resolve) => waiting.push(resolve));
    else active += 1;
    try {
      return await task();
    } finally {
      next();
    }
  };
}
