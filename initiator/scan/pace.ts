/**
 * How fast a scan sends: a global limit on SYNs per second (every new connection and every
 * retransmitted SYN), and per target a politeness gap between the end of one connection and the first
 * SYN of the next. The clock and the timer are passed in, so both are tested without waiting.
 */

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * A token bucket of SYNs: `rate` per second on average, at most `burst` at once (enough that a timer's
 * millisecond granularity does not cap high rates). Waiters are served in order.
 */
export class SynRate {
  private tokens: number;
  private last: number;
  private tail: Promise<void> = Promise.resolve();
  /** SYNs let through so far. */
  sent = 0;

  constructor(readonly rate: number, private readonly clock: Clock = realClock, readonly burst = Math.max(1, Math.ceil(rate / 100))) {
    this.tokens = this.burst;
    this.last = clock.now();
  }

  /** Resolves when one more SYN may leave. */
  take(): Promise<void> {
    const turn = this.tail.then(() => this.waitForToken());
    this.tail = turn;
    return turn;
  }

  private async waitForToken(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        this.sent++;
        return;
      }
      await this.clock.sleep(Math.max(1, ((1 - this.tokens) * 1000) / this.rate));
    }
  }
}

/**
 * One target's pace: its connections come one after another, each first SYN at least `gapMs` after
 * the previous connection to it ended; the round trip measured by its first handshakes sets how long a
 * SYN waits for its answer (4 round trips, 200 ms at least, the scan's timeout at most, as a TCP's RTO).
 */
export class TargetPace {
  private lastEnd = -Infinity;
  private rttMs?: number;

  constructor(private readonly synRate: SynRate, private readonly gapMs: number, private readonly timeoutMs: number, private readonly clock: Clock = realClock) {}

  async firstSyn(): Promise<void> {
    const wait = this.lastEnd + this.gapMs - this.clock.now();
    if (wait > 0) await this.clock.sleep(wait);
    await this.synRate.take();
  }

  nextSyn(): Promise<void> {
    return this.synRate.take();
  }

  answerWaitMs(): number {
    return this.rttMs === undefined ? this.timeoutMs : Math.min(this.timeoutMs, Math.max(200, 4 * this.rttMs));
  }

  measured(rttMs: number): void {
    // The smallest round trip seen: queueing at the server or on the path only ever adds to it.
    this.rttMs = this.rttMs === undefined ? rttMs : Math.min(this.rttMs, rttMs);
  }

  /** A connection to the target ended: the gap starts now. */
  connectionEnded(): void {
    this.lastEnd = this.clock.now();
  }
}
