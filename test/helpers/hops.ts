/**
 * A localised test made of real ICMP errors (test/fixtures/icmp-errors.txt): the SYN with kind 200
 * that scripts/capture-icmp-fixtures.ts sent through a Linux router (hop 1), the strip-options box
 * (hop 2, quoting before it strips), a router quoting 28 bytes (hop 3) and an MPLS router (hop 4,
 * whose quote shows the option replaced by NOPs): its hop rows and its finding, as locate stores them.
 */
import { compareQuote } from '../../shared/quote.js';
import type { HopRecord, Store } from '../../shared/store.js';
import { decodeIcmpError } from '../../shared/wire/icmp-packet.js';
import { fixtureProbes } from '../../scripts/capture-icmp-fixtures.js';
import { loadIcmpFixtures } from './fixtures.js';

export interface FixtureHops {
  /** The volunteer's address: the copies' source, the errors' destination. */
  source: string;
  responder: string;
  hops: HopRecord[];
  location: Record<string, unknown>;
}

export function fixtureHops(family: 4 | 6 = 4): FixtureHops {
  const errors = loadIcmpFixtures().filter((f) => f.name.startsWith(`v${family}-syn-options-`)).map((f) => decodeIcmpError(f.bytes)!);
  const quoted = errors[0].quote.packet.ip!;
  const hops = errors.map((error, i): HopRecord => {
    const ttl = i + 1;
    const sent = fixtureProbes(quoted.src, quoted.dst, ttl).find((p) => p.name === 'syn-options')!.bytes;
    const comparison = compareQuote(sent, error.quote);
    const bytes = Uint8Array.from(loadIcmpFixtures().find((f) => f.name.startsWith(`v${family}-syn-options-hop${ttl}`))!.bytes);
    return {
      ttl, kind: 'time-exceeded', router: error.ip.src, atUs: 1_764_000_000_000_000 + ttl * 1000, sent, quoteLength: error.quote.bytes.length, quote: error.quote.bytes,
      packet: bytes, diff: comparison.rows, notVisible: comparison.notVisible,
    };
  });
  const location = {
    status: 'changed', fields: ['option.kind-200'], last: { ttl: 2, address: hops[1].router }, first: { ttl: 4, address: hops[3].router },
    unknown: [{ ttl: 3, why: 'not-visible' }], rateLimited: [], silent: [], responderHop: 5,
    summary: `option.kind-200 changed between hop 2 (${hops[1].router}) and hop 4 (${hops[3].router}) (hop 3: not-visible)`,
  };
  return { source: quoted.src, responder: quoted.dst, hops, location };
}

/** Adds a finished run with one localised test (syn-unknown-option, removed) to `store`; returns the run id. */
export function addLocatedRun(store: Store, id: string, family: 4 | 6 = 4, label: string | null = 'located'): string {
  const f = fixtureHops(family);
  store.insertRun({
    id, startedAt: '2026-11-02T10:00:00.000Z', label, responder: f.responder, toolVersion: '0.1.0',
    hostInfo: { hostname: 'volunteer-laptop', platform: 'linux', source: f.source, observedAddress: f.source },
  });
  store.insertTest({
    runId: id, seq: 0, name: 'syn-unknown-option', port: 34343, startedAt: '2026-11-02T10:00:01.000Z', finishedAt: '2026-11-02T10:00:02.000Z', verdict: 'removed',
    detail: { option: 'kind-200', location: f.location }, segments: [], diffs: [], hops: f.hops,
  });
  store.finishRun(id, '2026-11-02T10:00:05.000Z');
  return id;
}
