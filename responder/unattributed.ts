import type { Store } from '../shared/store.js';
import type { SegmentHead } from './registry.js';
import { sourcePrefixOf } from './segment-head.js';

/**
 * Segments no registered test could take: on a public address mostly scanners on 80 and 443, all day.
 * They are evidence (a stray retransmission, a proxy's late segment), but must not fill memory or disk:
 *  - the last `keep` segments are kept whole, in a ring;
 *  - every segment is counted per source network (IPv4 /24, IPv6 /48) and destination port, for at
 *    most `sources` such pairs; segments from further pairs are counted together as "other".
 * flush() writes both as the run's one `unattributed` pseudo-test, replacing the previous copy, so
 * the database holds at most `keep` of these segments however long the responder runs.
 */
export interface UnattributedLimits {
  /** Segments kept whole (the most recent); 0 keeps none. */
  keep: number;
  /** (source network, port) pairs counted separately. */
  sources: number;
}

/** 1,000 whole segments take about 17 ms to write (10,000: 100 ms, a pause a flood of 100,000 segments/s notices). */
export const DEFAULT_UNATTRIBUTED_LIMITS: UnattributedLimits = { keep: 1_000, sources: 10_000 };

interface SourceCount {
  segments: number;
  firstUs: number;
  lastUs: number;
}

export class UnattributedLog {
  readonly limits: UnattributedLimits;
  private ring: Array<{ bytes: Uint8Array; atUs: number }> = [];
  /** Next slot of the ring to overwrite once it is full. */
  private next = 0;
  private readonly bySource = new Map<string, SourceCount>();
  private other: SourceCount = { segments: 0, firstUs: 0, lastUs: 0 };
  private total = 0;
  private changed = false;
  private writtenId?: number;

  constructor(limits: Partial<UnattributedLimits> = {}) {
    this.limits = { ...DEFAULT_UNATTRIBUTED_LIMITS, ...limits };
  }

  get count(): number {
    return this.total;
  }

  get kept(): number {
    return this.ring.length;
  }

  get sourcesCounted(): number {
    return this.bySource.size;
  }

  add(bytes: Uint8Array, atUs: number, head?: SegmentHead): void {
    this.total++;
    this.changed = true;
    if (this.limits.keep > 0) {
      if (this.ring.length < this.limits.keep) this.ring.push({ bytes, atUs });
      else {
        this.ring[this.next] = { bytes, atUs };
        this.next = (this.next + 1) % this.limits.keep;
      }
    }
    const key = `${sourcePrefixOf(bytes)} ${head?.dstPort ?? '?'}`;
    let count = this.bySource.get(key);
    if (!count) {
      if (this.bySource.size >= this.limits.sources) count = this.other;
      else this.bySource.set(key, (count = { segments: 0, firstUs: atUs, lastUs: atUs }));
    }
    if (count.segments === 0) count.firstUs = atUs;
    count.segments++;
    count.lastUs = atUs;
  }

  /** The kept segments, oldest first. */
  segments(): Array<{ bytes: Uint8Array; atUs: number }> {
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  /** Counts per source network and port, most segments first. */
  sources(): Array<{ source: string; port: string; segments: number; first: string; last: string }> {
    const at = (us: number): string => new Date(us / 1000).toISOString();
    const rows = [...this.bySource].map(([key, c]) => {
      const [source, port] = key.split(' ');
      return { source, port, segments: c.segments, first: at(c.firstUs), last: at(c.lastUs) };
    });
    if (this.other.segments > 0) rows.push({ source: 'other', port: 'other', segments: this.other.segments, first: at(this.other.firstUs), last: at(this.other.lastUs) });
    return rows.sort((a, b) => b.segments - a.segments);
  }

  /** Writes the kept segments and the counts as the `unattributed` pseudo-test of `runId`, replacing the previous copy. */
  flush(store: Store, runId: string): void {
    if (!this.changed) return;
    const segments = this.segments();
    const sources = this.sources();
    const times = [...segments.map((s) => s.atUs)];
    const at = (us: number | undefined): string => new Date((us ?? Date.now() * 1000) / 1000).toISOString();
    store.transaction(() => {
      if (this.writtenId !== undefined) store.deleteTest(this.writtenId);
      this.writtenId = store.insertTest({
        runId,
        name: 'unattributed',
        port: 0,
        seq: 0,
        startedAt: sources.length ? sources.reduce((a, s) => (s.first < a ? s.first : a), sources[0].first) : at(times[0]),
        finishedAt: sources.length ? sources.reduce((a, s) => (s.last > a ? s.last : a), sources[0].last) : at(times.at(-1)),
        verdict: 'recorded',
        detail: {
          reason: 'no registered test matched these segments; they were not answered',
          segments: this.total,
          kept: `the last ${segments.length} (at most ${this.limits.keep})`,
          bySource: sources,
        },
        segments: segments.map((s) => ({ side: 'responder', dir: 'received', atUs: s.atUs, bytes: s.bytes })),
        diffs: [],
      });
    });
    this.changed = false;
  }
}
