/** The scan's progress line: entries done of all, tests stored, the SYN rate now, and when it should end. Pure. */

/** 42s, 3m05s, 1h02m. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The time left if the rest goes as fast as what is done (undefined before anything is done). */
export function etaMs(done: number, total: number, elapsedMs: number): number | undefined {
  if (done === 0) return undefined;
  return (elapsedMs * (total - done)) / done;
}

export function formatProgress(p: { done: number; total: number; tests: number; synPerSecond: number; elapsedMs: number }): string {
  const eta = etaMs(p.done, p.total, p.elapsedMs);
  return `[${p.done}/${p.total} targets] ${p.tests} tests stored · ${Math.round(p.synPerSecond)} SYN/s · ` +
    `${formatDuration(p.elapsedMs)} elapsed · ETA ${eta === undefined ? '…' : formatDuration(eta)}`;
}

/** SYNs per second over the last `windowMs`, from samples of a running count. */
export class RateMeter {
  private readonly samples: Array<[at: number, count: number]> = [];
  constructor(private readonly windowMs = 5000) {}

  add(at: number, count: number): number {
    this.samples.push([at, count]);
    while (this.samples.length > 2 && at - this.samples[0][0] > this.windowMs) this.samples.shift();
    const [t0, c0] = this.samples[0];
    return at > t0 ? ((count - c0) * 1000) / (at - t0) : 0;
  }
}
