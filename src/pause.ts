/**
 * Waits `ms`, or less when `signal` aborts: the caller's loop sees the abort and stops. For the
 * bounded polling loops (a builder's drain, a daemon lease), where an interrupt must not wait out
 * the poll interval.
 */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
