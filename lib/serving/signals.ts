/**
 * One 'abort' listener per AbortSignal, shared by every request that watches it.
 *
 * A service often derives many requests from one signal (a shutdown signal, a client's
 * controller). Adding one listener per request makes Node print MaxListenersExceededWarning
 * past 10 listeners; here each signal gets a single listener that fans the event out to the
 * callbacks registered for it, and that listener is removed when the last callback leaves.
 */
import type { AbortSignalLike } from '../native-types';


interface Watchers {
  readonly callbacks: Set<() => void>;
  readonly listener: () => void;
}

const watched = new WeakMap<AbortSignalLike, Watchers>();

/**
 * Calls `callback` once when `signal` aborts. Returns the function that unsubscribes it
 * (safe to call more than once, and after the event). An already aborted signal is not
 * reported: callers check `signal.aborted` first.
 */
export function onAbort(signal: AbortSignalLike, callback: () => void): () => void {
  let entry = watched.get(signal);
  if (!entry) {
    const callbacks = new Set<() => void>();
    const listener = (): void => {
      watched.delete(signal);
      // Copy first: a callback may unsubscribe others.
      for (const cb of [...callbacks]) {
        try {
          cb();
        } catch (e) {
          // A failing callback must not keep the others from running; surface it like an
          // exception thrown in an event listener.
          queueMicrotask(() => {
            throw e;
          });
        }
      }
      callbacks.clear();
    };
    entry = { callbacks, listener };
    watched.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { callbacks } = entry;
  callbacks.add(callback);
  return () => {
    if (!callbacks.delete(callback) || callbacks.size > 0) return;
    const current = watched.get(signal);
    if (current && current.callbacks === callbacks) {
      watched.delete(signal);
      signal.removeEventListener('abort', current.listener);
    }
  };
}

/** Number of callbacks waiting on `signal` (tests). */
export function abortWatcherCount(signal: AbortSignalLike): number {
  return watched.get(signal)?.callbacks.size ?? 0;
}
