/**
 * Where on the path a test's probe changed, from what the hops quoted of its copies (pure). The hops
 * are walked in TTL order, the responder last: the finding is the last hop whose quote still shows
 * an examined field as sent and the first that shows it changed; or where the copies stopped; or the
 * hop of a proxy that answers for the responder; or why it cannot be said.
 *
 * Linux (and most routers) quote a packet as it arrived, before their own forwarding rules, so a
 * box's own change is first visible in the next hop's quote: "between hop k and hop k+1" means the
 * box is hop k, or the link between them.
 */
import type { DiffRow } from '../../shared/diff.js';
import { fieldVisible, type QuoteComparison } from '../../shared/quote.js';
import type { IcmpErrorKind } from '../../shared/wire/icmp-packet.js';
import { plural } from '../../shared/cli.js';

/** One hop's answer to one copy: an ICMP error from a router, or the copy as the responder received it. */
export interface HopObservation {
  ttl: number;
  kind: IcmpErrorKind | 'responder';
  /** The router's address (the error's source), or the responder's. */
  router: string;
  atUs: number;
  /** The copy sent with this TTL. */
  sent: Uint8Array;
  /** The quote (an error's quoted packet, or the whole segment at the responder). */
  quote: Uint8Array;
  /** The error as received (undefined for the responder's row). */
  packet?: Uint8Array;
  comparison: QuoteComparison;
}

/** Everything known of one test's copies. */
export interface FlowTrace {
  test: string;
  port: number;
  examines: readonly string[];
  reversePath: boolean;
  /** False when the script never sent the probe (its handshake failed): nothing was traced. */
  probeSent: boolean;
  /** The copies sent, by TTL. */
  copies: ReadonlyMap<number, Uint8Array>;
  /** Per TTL, the hops that answered (a TTL answered by two routers, on a load-balanced path, has two). */
  hops: HopObservation[];
  /** Copies that reached the responder (as part of the test's flow), the lowest TTL first. */
  atResponder: HopObservation[];
  responder: string;
  /** Rounds of copies sent (1 + retries that were needed). */
  rounds: number;
  /** Quotes of this flow whose TTL the tag fields could not tell. */
  unmatched: number;
  /** The answer the test's connection got from the far end (a SYN-ACK), with its IP TTL / hop limit. */
  answerTtl?: number;
  /** The probe is the test's SYN. */
  probeIsSyn: boolean;
  /** The test's own SYN (its ISN) reached the responder. */
  ownSynAtResponder: boolean;
  /** Address/port the responder saw the test's SYN from, when not those it was sent from (a NAT on the path). */
  translated?: { sent: string; received: string };
}

/** What the other flows of the same path taught: which hop answers at which TTL. */
export interface PathView {
  /** TTL -> the routers that answered copies of any flow with that TTL. */
  routers: Map<number, Set<string>>;
  /** The lowest TTL at which any flow's copies reached the responder (its hop number). */
  responderTtl?: number;
}

export interface HopRef {
  ttl: number;
  /** null: the hop never answered (its address is not known). */
  address: string | null;
  /** The responder, as the last observation point. */
  responder?: true;
}

export type LocationStatus = 'changed' | 'dropped' | 'proxy' | 'unchanged' | 'not-localisable';
export type NotLocalisableReason = 'reverse-path' | 'no-probe' | 'no-quotes' | 'rate-limited' | 'quotes-too-short' | 'nat' | 'not-reproduced';

export interface Location {
  status: LocationStatus;
  reason?: NotLocalisableReason;
  /** changed: the examined fields that changed; otherwise the examined fields. */
  fields: string[];
  /** changed: the last hop still showing them as sent (null: none did, not even hop 1), and the first showing them changed. */
  /** dropped: the last hop that quoted the copies, and the first that never saw them. */
  last?: HopRef | null;
  first?: HopRef;
  /** proxy: the hop that answers for the responder (from its answer's TTL), its address when it quoted too, and the last hop that quoted. */
  proxy?: { hop: number; address: string | null; answerTtl: number; lastQuote: HopRef | null };
  /** Hops between `last` and `first` that could not tell: silent, rate-limited, or quoting too little to show the field. */
  unknown?: Array<{ ttl: number; why: 'silent' | 'rate-limited' | 'not-visible' }>;
  /** Hops that never answered this flow's copies though they answered others' (ICMP rate limiting, or loss). */
  rateLimited: number[];
  /** Hops that answered no copy of any flow. */
  silent: number[];
  /** The responder's hop (the lowest TTL that reached it), when known. */
  responderHop?: number;
  /** One sentence. */
  summary: string;
}

/** Addresses and ports: a NAT translates them back in the quotes of the errors it forwards (RFC 5508 4.2). */
const TRANSLATED_FIELDS = new Set(['ip.src', 'ip.dst', 'tcp.srcPort', 'tcp.dstPort']);

const matches = (row: DiffRow, field: string): boolean => {
  const name = `${row.layer}.${row.field}`;
  return name === field || name.startsWith(`${field}.`) || name.startsWith(`${field}#`) || (field === 'payload' && row.layer === 'payload');
};
const changedIn = (o: HopObservation, field: string): boolean => o.comparison.rows.some((r) => r.class === 'interference' && matches(r, field));
const refOf = (o: HopObservation): HopRef => (o.kind === 'responder' ? { ttl: o.ttl, address: o.router, responder: true } : { ttl: o.ttl, address: o.router });
const hopText = (h: HopRef | null | undefined): string => (!h ? 'the initiator' : h.responder ? `the responder (${h.address}, hop ${h.ttl})` : `hop ${h.ttl} (${h.address ?? 'no answer'})`);

/** The initial TTL an answer most likely left with (32, 64, 128 or 255), and so how many routers it crossed. */
export function routersCrossed(arrivedTtl: number): number {
  const initial = [32, 64, 128, 255].find((t) => t >= arrivedTtl) ?? 255;
  return initial - arrivedTtl;
}

/** The finding for one flow, given what the path's other flows showed. */
export function locate(trace: FlowTrace, path: PathView): Location {
  const fields = [...trace.examines];
  // The responder's hop: the lowest TTL that reached it in any flow (a flow may miss some of its own copies there).
  const reachedAt = [trace.atResponder[0]?.ttl, path.responderTtl].filter((t): t is number => t !== undefined);
  const responderHop = reachedAt.length ? Math.min(...reachedAt) : undefined;
  // Hops this flow's copies should have reached and that stayed silent for it, and why: up to the
  // responder's when its copies got there, else up to the last that quoted them (past it, nothing is owed).
  const lastQuoted = Math.max(0, ...trace.hops.map((h) => h.ttl));
  const farthest = trace.atResponder.length > 0 && responderHop !== undefined ? responderHop - 1
    : trace.hops.length > 0 ? lastQuoted : Math.max(0, ...path.routers.keys());
  const answered = new Set(trace.hops.map((h) => h.ttl));
  const rateLimited: number[] = [];
  const silent: number[] = [];
  for (let t = 1; t <= farthest; t++) {
    if (answered.has(t)) continue;
    if (path.routers.has(t)) rateLimited.push(t);
    else silent.push(t);
  }
  const base = { fields, rateLimited, silent, ...(responderHop !== undefined ? { responderHop } : {}) };
  const unknownBetween = (from: number, to: number, field?: string): NonNullable<Location['unknown']> => {
    const out: NonNullable<Location['unknown']> = [];
    for (let t = from + 1; t < to; t++) {
      const seen = trace.hops.filter((h) => h.ttl === t);
      if (seen.length === 0) out.push({ ttl: t, why: rateLimited.includes(t) ? 'rate-limited' : 'silent' });
      else if (field && !seen.some((h) => fieldVisible(field, h.comparison.visibility))) out.push({ ttl: t, why: 'not-visible' });
    }
    return out;
  };

  if (trace.reversePath) {
    return { status: 'not-localisable', reason: 'reverse-path', ...base, summary: `the judge examines what the responder sends: a change on the way back cannot be localised with probes from this side` };
  }
  if (!trace.probeSent) {
    // The connection got no further than a box answering its SYN: that box is where the path ends.
    if (trace.answerTtl !== undefined && !trace.ownSynAtResponder) return proxyAt(trace, path, base, null);
    return { status: 'not-localisable', reason: 'no-probe', ...base, summary: 'the test never sent its probe (its connection was not set up), so no copies went out' };
  }

  // Every observation point in path order: the hops, then the responder.
  const points = [...trace.hops].sort((a, b) => a.ttl - b.ttl || a.atUs - b.atUs);
  if (trace.atResponder[0]) points.push({ ...trace.atResponder[0], ttl: responderHop ?? trace.atResponder[0].ttl });

  // 1. Where an examined field first shows a change.
  const changes = fields.map((field) => {
    const first = points.findIndex((p) => fieldVisible(field, p.comparison.visibility) && changedIn(p, field));
    return { field, first };
  }).filter((c) => c.first >= 0).sort((a, b) => a.first - b.first);
  if (changes.length > 0) {
    const at = points[changes[0].first];
    const changed = changes.filter((c) => points[c.first].ttl === at.ttl).map((c) => c.field);
    const field = changed[0];
    const lastSame = [...points.slice(0, changes[0].first)].reverse().find((p) => fieldVisible(field, p.comparison.visibility) && !changedIn(p, field));
    const last = lastSame ? refOf(lastSame) : null;
    const visibleBefore = points.slice(0, changes[0].first).some((p) => fieldVisible(field, p.comparison.visibility));
    // A data probe whose connection ended at a box that answered for the responder, and what reached
    // the responder was that box's own connection (an intercepting proxy relaying the payload, re-cut or
    // rewritten): a change first seen there is the proxy's, at the hop its answer names.
    if (at.kind === 'responder' && !trace.probeIsSyn && trace.answerTtl !== undefined && !trace.ownSynAtResponder) {
      const lastHop = [...trace.hops].sort((x, y) => y.ttl - x.ttl)[0];
      return proxyAt(trace, path, base, lastHop ? refOf(lastHop) : null);
    }
    if (at.kind === 'responder' && changed.every((f) => TRANSLATED_FIELDS.has(f))) {
      return {
        status: 'not-localisable', reason: 'nat', ...base, fields: changed,
        summary: `${changed.join(', ')} changed before the responder, but a NAT translates the quotes of the errors it forwards back (RFC 5508), so every hop shows them as sent`,
      };
    }
    if (at.kind === 'responder' && !visibleBefore && trace.hops.length > 0) {
      return {
        status: 'not-localisable', reason: 'quotes-too-short', ...base, fields: changed,
        unknown: unknownBetween(0, at.ttl, field),
        summary: `${changed.join(', ')} changed before the responder; no hop quoted enough of the probe to show ${changed.length > 1 ? 'them' : 'it'} (quotes of ${[...new Set(trace.hops.map((h) => h.comparison.visibility.quoted))].join(', ')} bytes)`,
      };
    }
    const unknown = unknownBetween(last?.ttl ?? 0, at.ttl, field);
    return {
      status: 'changed', ...base, fields: changed, last, first: refOf(at), ...(unknown.length ? { unknown } : {}),
      summary: `${changed.join(', ')} changed between ${hopText(last)} and ${hopText(refOf(at))}${unknown.length ? ` (hop ${unknown.map((u) => `${u.ttl}: ${u.why}`).join(', ')})` : ''}`,
    };
  }

  // 2. The copies reached the responder unchanged (in the fields the judge reads).
  if (trace.atResponder.length > 0) {
    return {
      status: 'unchanged', reason: 'not-reproduced', ...base,
      summary: `the copies crossed the path as sent up to the responder (hop ${responderHop})${fields.length ? ` with ${fields.join(', ')} as sent` : ''}: the interference did not show on this probe`,
    };
  }

  // 3. The copies did not reach the responder: a box answered for it, or they stopped on the way.
  const lastHop = [...trace.hops].sort((a, b) => b.ttl - a.ttl)[0];
  const lastQuote = lastHop ? refOf(lastHop) : null;
  // A SYN whose copies never get through but is answered was answered by a box; a data segment's, when
  // the connection itself never reached the responder either (a split-connection proxy's).
  if (trace.answerTtl !== undefined && (trace.probeIsSyn || !trace.ownSynAtResponder)) return proxyAt(trace, path, base, lastQuote);
  if (trace.hops.length === 0) {
    const reason: NotLocalisableReason = path.routers.size > 0 ? 'rate-limited' : 'no-quotes';
    return {
      status: 'not-localisable', reason, ...base,
      summary: reason === 'rate-limited'
        ? `no hop answered this probe's copies in ${trace.rounds} round${trace.rounds === 1 ? '' : 's'}, though hops ${[...path.routers.keys()].sort((a, b) => a - b).join(', ')} answered others (ICMP rate limiting)`
        : 'no hop answered any copy (routers that send no ICMP errors, or a filter dropping them)',
    };
  }
  if (trace.translated) {
    return {
      status: 'not-localisable', reason: 'nat', ...base,
      summary: `the copies were quoted as sent up to ${hopText(lastQuote)} and never reached the responder in this flow, which a NAT on the path translated (${trace.translated.sent} seen as ${trace.translated.received}); quotes cannot show what the NAT did to them`,
    };
  }
  const nextTtl = lastHop.ttl + 1;
  const nextAddress = [...(path.routers.get(nextTtl) ?? [])][0];
  const first: HopRef = nextAddress !== undefined ? { ttl: nextTtl, address: nextAddress }
    : responderHop === nextTtl ? { ttl: nextTtl, address: trace.responder, responder: true } : { ttl: nextTtl, address: null };
  return {
    status: 'dropped', ...base, last: lastQuote, first,
    summary: `dropped after ${hopText(lastQuote)}, before ${hopText(first)}: no copy got further`,
  };
}

/** The finding for a path that ends at a box answering for the responder: its hop from its answer's TTL. */
function proxyAt(trace: FlowTrace, path: PathView, base: Pick<Location, 'fields' | 'rateLimited' | 'silent' | 'responderHop'>, lastQuote: HopRef | null): Location {
  const answerTtl = trace.answerTtl!;
  const hop = routersCrossed(answerTtl) + 1;
  const address = trace.hops.find((h) => h.ttl === hop)?.router ?? [...(path.routers.get(hop) ?? [])][0] ?? null;
  return {
    status: 'proxy', ...base,
    proxy: { hop, address, answerTtl, lastQuote },
    summary: `the path ends at a proxy at hop ${hop}${address ? ` (${address})` : ''}: it answers for the responder (its answer came with TTL ${answerTtl}, ${plural(hop - 1, 'router')} away)${lastQuote ? `; ${hopText(lastQuote)} was the last to quote the probe` : ''}`,
  };
}
