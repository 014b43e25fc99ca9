// How long an agent waits before it connects again: exponential from a base, capped, with full
// jitter (a random delay in [0, cap)), so that a thousand agents a restarted server lost do not
// come back in one wave.

/** The bounds of the reconnect delay. */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/** The agent's: 1 s doubling to 30 s. */
export const defaultBackoff: Backoff = { baseMs: 1_000, maxMs: 30_000 };

/**
 * The delay before reconnect attempt `attempt` (0: the first after a loss): uniform in
 * [0, min(max, base × 2^attempt)).
 *
 * @example reconnectDelay(3, defaultBackoff) // somewhere in [0, 8000)
 */
export function reconnectDelay(
  attempt: number,
  backoff: Backoff = defaultBackoff,
  random = Math.random,
): number {
  const cap = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
