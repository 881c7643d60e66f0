/**
 * Wakes this process's webhook dispatchers after a statement that published events committed
 * without a NOTIFY: the payment's one statement. A NOTIFY holds PostgreSQL's notification-queue
 * lock from before the commit until the commit is flushed, so every applied payment's commit (and
 * its WAL flush) queued behind the one before: the notify run's sessions spent most of their time
 * waiting on that lock (`Lock:object`, docs/performance.md). Dispatchers of other processes find
 * the event at their next poll (WEBHOOK_POLL_MS); `publishEvent`'s transactions still NOTIFY.
 */
const wakers = new Set<() => void>();

/** Registers a dispatcher's wake-up; returns its removal. */
export function onEventsCommitted(wake: () => void): () => void {
  wakers.add(wake);
  return () => void wakers.delete(wake);
}

/** Called after the commit of events published without a NOTIFY. */
export function eventsCommitted(): void {
  for (const wake of wakers) wake();
}
