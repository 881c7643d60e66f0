/**
 * Fixed one-minute windows counted per source (IP), in this process. Used to bound what
 * unauthenticated traffic may write; it never decides whether a request is processed, so
 * per-instance counting (no Redis round trip, works with Redis down) is enough.
 */
export class SourceLimiter {
  private window = 0;
  private counts = new Map<string, number>();
  /** Totals since start, for logs and tests: allowed and over the limit. */
  readonly totals = { allowed: 0, limited: 0 };

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    /** Bounds the map itself: a flood from many addresses cannot grow memory without limit. */
    private readonly maxSources = 10_000,
  ) {}

  /** Counts one event from `source`; false once the source is over its allowance for this minute. */
  take(source: string): boolean {
    const w = Math.floor(this.now() / 60_000);
    if (w !== this.window) {
      this.window = w;
      this.counts.clear();
    }
    const n = (this.counts.get(source) ?? 0) + 1;
    if (this.counts.size >= this.maxSources && !this.counts.has(source)) {
      this.totals.limited++;
      return false;
    }
    this.counts.set(source, n);
    const ok = n <= this.perMinute;
    if (ok) this.totals.allowed++;
    else this.totals.limited++;
    return ok;
  }
}
