// Reconnect delays: exponential, capped, with jitter so that a restarted
// server is not hit by every browser in the same millisecond.

export const defaultBackoff = Object.freeze({ baseMs: 500, maxMs: 15000 });

// attempt 0 is the first retry. "Equal jitter": half the exponential delay
// is kept, the other half is random, so the delay never collapses to zero.
export function backoffDelay(attempt, { baseMs, maxMs } = defaultBackoff, random = Math.random) {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exponential / 2 + (exponential / 2) * random());
}
