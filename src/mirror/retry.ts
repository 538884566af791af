// Politeness for `mirror`: a bound on concurrent registry requests, and retries with exponential
// backoff for what may pass (429, 5xx, resets, timeouts), waiting at least what `Retry-After` asks.
import { RegistryRequestError } from '../registry/types.js';

export interface RetryPolicy {
  attempts: number;
  /** First backoff; doubled each time, with jitter, capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited for: the error stands. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5_000, maxRetryAfterMs: 120_000 };

const TRANSIENT = new Set(['rate-limited', 'server', 'reset', 'timeout']);

/** The registry failure behind an error (itself, or one a wrapper carries as `registryError`). */
export function registryFailure(error: unknown): RegistryRequestError | undefined {
  if (error instanceof RegistryRequestError) return error;
  const inner = (error as { registryError?: unknown } | null)?.registryError;
  return inner instanceof RegistryRequestError ? inner : undefined;
}

export function isTransient(error: unknown): boolean {
  const failure = registryFailure(error);
  return failure !== undefined && TRANSIENT.has(failure.kind);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs `op` until it succeeds, fails for good, or the attempts run out (the last error stands). */
export async function withRetry<T>(op: () => Promise<T>, policy: RetryPolicy, signal?: AbortSignal, onRetry?: (error: RegistryRequestError, delayMs: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (error) {
      if (!isTransient(error) || attempt >= policy.attempts || signal?.aborted) throw error;
      const e = registryFailure(error)!;
      if (e.retryAfterMs !== undefined && e.retryAfterMs > policy.maxRetryAfterMs) throw error;
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.max(e.retryAfterMs ?? 0, backoff / 2 + Math.random() * (backoff / 2));
      onRetry?.(e, delay);
      await sleep(delay, signal);
    }
  }
}

/** At most `limit` tasks at once; the rest wait in order. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
