import type { SegmentRecord } from '../shared/store.js';
import { TcpFlag } from '../shared/wire/tcp.js';
import { observe, type Observed } from './observed.js';
import type { TestObservations } from './test-case.js';

/**
 * Rebuilds a test's observations from its stored segments, so a judge can be run again on what was
 * recorded (re-judging a database, unit tests on recorded bytes). The probe's ISN and endpoints are
 * those of the first segment the initiator sent; `responderCollected` false means the responder's
 * view was never collected (then the judge sees none, and says inconclusive).
 */
export function observationsFromSegments(test: { name: string; port: number }, segments: readonly SegmentRecord[], responderCollected = true, notes: Record<string, unknown> = {}): TestObservations {
  const list = (side: SegmentRecord['side'], dir: SegmentRecord['dir']): Observed[] =>
    segments.filter((s) => s.side === side && s.dir === dir).map((s) => observe(s.bytes, s.atUs));
  const initiatorSent = list('initiator', 'sent');
  const first = initiatorSent[0]?.packet;
  const firstSyn = initiatorSent.find((o) => (o.packet.tcp?.flags ?? 0) & TcpFlag.SYN)?.packet;
  return {
    name: test.name,
    port: test.port,
    local: { address: first?.ip?.src ?? '', port: first?.tcp?.srcPort ?? 0 },
    remote: { address: first?.ip?.dst ?? '', port: first?.tcp?.dstPort ?? test.port },
    isn: firstSyn?.tcp?.seq ?? first?.tcp?.seq ?? 0,
    initiator: { sent: initiatorSent, received: list('initiator', 'received') },
    responder: responderCollected ? { sent: list('responder', 'sent'), received: list('responder', 'received') } : undefined,
    notes,
  };
}
