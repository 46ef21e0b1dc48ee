import { TcpFlag } from '../../shared/wire/tcp.js';
import { findOption, nop, OptionKind, type TcpOption } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../syn-options.js';
import { first, hasData, isRst, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { Observed, ProbeConnection } from '../probe.js';
import type { TestCase } from '../test-case.js';

const PROBE_BYTES = 100;
/** How far beyond what the responder has sent (nothing but its SYN) the probe's ACK reaches. */
const ACK_AHEAD = 1000;

const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;
const offset = (value: number, base: number): number => (value - base) | 0;
const isDataAck = (o: Observed): boolean => o.packet.tcp !== undefined && (flagsOf(o) & TcpFlag.ACK) !== 0 && (flagsOf(o) & (TcpFlag.SYN | TcpFlag.RST)) === 0 && o.packet.payload.length === 0;
const timestampsIf = (c: ProbeConnection, synAck: Observed): TcpOption[] =>
  findOption(synAck.packet.tcp?.options, OptionKind.TIMESTAMPS) ? [nop(), nop(), c.timestampOption()] : [];

export const ackHole: TestCase = {
  name: 'ack-hole',
  sends: `after an ordinary handshake, a ${PROBE_BYTES}-byte data segment whose ACK acknowledges ${ACK_AHEAD} bytes the responder never sent`,
  verdicts: ['passed', 'corrected'],
  async run(connection, context) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck || isRst(synAck)) return;
    await connection.sendData(context.payload(PROBE_BYTES), { ack: (connection.rcvNxt + ACK_AHEAD) >>> 0, options: timestampsIf(connection, synAck) });
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    const responder = obs.responder!;
    // The responder's ISN as it sent it and as the initiator saw it: acks are compared relative to them,
    // so a box translating sequence numbers consistently does not count as changing the ack.
    const isnOwn = first(responder.sent, isSynAck)?.packet.tcp?.seq;
    const isnSeen = first(obs.initiator.received, isSynAck)?.packet.tcp?.seq;
    if (isnOwn === undefined || isnSeen === undefined) return { verdict: 'inconclusive', detail: { reason: 'no SYN-ACK on one side to relate the ack numbers to' } };
    const sent = first(obs.initiator.sent, hasData)!;
    const sentRelative = offset(sent.packet.tcp!.ack, isnSeen);
    const arrivals = responder.received.filter(hasData).map((o) => ({ ack: o.packet.tcp!.ack, relative: offset(o.packet.tcp!.ack, isnOwn), ackFlag: (flagsOf(o) & TcpFlag.ACK) !== 0 }));
    const changed = arrivals.filter((a) => !a.ackFlag || a.relative !== sentRelative);
    const detail = {
      ackAhead: sentRelative - 1,
      sentAck: sent.packet.tcp!.ack,
      sentRelative,
      received: arrivals.map((a) => ({ ack: a.ack, relative: a.relative, ...(a.ackFlag ? {} : { ackFlag: false }) })),
      ...(changed.length ? { change: changed[0].relative - sentRelative } : {}),
    };
    return { verdict: changed.length ? 'corrected' : 'passed', detail };
  },
};
