import { matchSegments } from '../../shared/match.js';
import { bytesEqual } from '../../shared/wire/bytes.js';
import { formatFlags } from '../../shared/wire/tcp.js';
import { encodeOptions, formatOption, type TcpOption } from '../../shared/wire/tcp-options.js';
import { handshake, timestampsIfOffered } from '../probe-scripts.js';
import { flagsOf, hasData, indexesByArrival, initiatorIsns, isDataAck, mssOf, seqOffset, sharedVerdict } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

/** The largest segment (payload + options) a 1500-byte MTU carries: what the SYN announces for IPv4, less for IPv6. */
const MAX_SEGMENT = { 4: 1460, 6: 1440 } as const;

const optionList = (o: Observed): readonly TcpOption[] => o.packet.tcp?.options ?? [];
const sameOptions = (a: Observed, b: Observed): boolean => bytesEqual(encodeOptions(optionList(a), true), encodeOptions(optionList(b), true));

export const split: TestCase = {
  name: 'split',
  sends: 'after a handshake negotiating timestamps, one full-size data segment (the MSS the SYN-ACK allows, less its timestamps option) carrying NOP,NOP,timestamps',
  verdicts: ['intact', 'split'],
  carriesToken: 'in-stream',
  probe: dataProbe('payload'),
  async run(connection, context) {
    const synAck = await handshake(connection);
    if (!synAck) return;
    const options = timestampsIfOffered(connection, synAck);
    // Full-size for this path: the peer's MSS (which a clamping box may have lowered), at most what fits a 1500-byte MTU.
    const peerMss = mssOf(synAck) ?? 536;
    const size = Math.min(peerMss, MAX_SEGMENT[connection.local.address.includes(':') ? 6 : 4]) - encodeOptions(options).length;
    Object.assign(connection.notes, { peerMss, segmentBytes: size });
    await connection.sendData(context.payload(size), { options });
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    const sent = obs.initiator.sent;
    const received = obs.responder!.received;
    const isnAtResponder = initiatorIsns(obs).received;
    // Every copy of the probe (sendData resends it when its ACK is late); the first is the reference.
    const copies = sent.flatMap((o, i) => (hasData(o) ? [i] : []));
    const probe = sent[copies[0]];
    const start = seqOffset(probe.packet.tcp!.seq, obs.isn);
    const length = probe.packet.payload.length;
    const match = matchSegments(sent.map((o) => o.packet), received.map((o) => o.packet), { isn: { sent: obs.isn, received: isnAtResponder } });
    const group = match.groups.find((g) => g.sent.some((i) => copies.includes(i)));
    const arrived = indexesByArrival(received, [...new Set(group?.pairs.filter(([s]) => copies.includes(s)).map(([, r]) => r) ?? [])]);
    if (!group || arrived.length === 0) {
      return { verdict: 'inconclusive', detail: { reason: 'no data segment the responder received lies where the probe was sent', probeBytes: length } };
    }
    const pieces = arrived.map((r) => {
      const o = received[r];
      return {
        offset: seqOffset(o.packet.tcp!.seq, isnAtResponder) - start,
        length: o.packet.payload.length,
        flags: formatFlags(flagsOf(o)),
        options: optionList(o).map(formatOption),
        optionsAsSent: sameOptions(probe, o),
      };
    });
    const distinct = new Set(pieces.map((p) => `${p.offset}+${p.length}`));
    // A piece strictly inside the probe is a split even when its sibling pieces were lost.
    const partial = pieces.some((p) => p.offset >= 0 && p.offset + p.length <= length && p.length < length);
    const isSplit = group.relations.includes('split') || group.relations.includes('resegmented') || partial;
    const detail = {
      probeBytes: length,
      probeOptions: optionList(probe).map(formatOption),
      pieceCount: distinct.size,
      pieceSizes: pieces.map((p) => p.length),
      pieces,
      relations: group.relations,
      ...(group.payloadIntact !== undefined ? { payloadIntact: group.payloadIntact } : {}),
    };
    return { verdict: isSplit ? 'split' : 'intact', detail };
  },
};
