/**
 * Script helpers: what test scripts send and how long they wait, shared by the test catalogue
 * (initiator/catalogue/) and, through initiator/api.ts, by test files written outside mbprobe. Judging
 * helpers (pure functions of what was observed) live in judge-helpers.ts.
 */
import { findOption, mss, nop, OptionKind, sackPermitted, timestamps, windowScale, type TcpOption } from '../shared/wire/tcp-options.js';
import { isRst, timestampsOf } from './judge-helpers.js';
import type { Observed } from './observed.js';
import type { ProbeConnection, SegmentSpec } from './probe.js';
import type { RunContext } from './test-case.js';

/** The options Linux puts in a SYN, in Linux's order: what an ordinary connection offers. */
export function defaultSynOptions(timestampValue = (Date.now() >>> 0)): TcpOption[] {
  return [mss(1460), sackPermitted(), timestamps(timestampValue, 0), nop(), windowScale(7)];
}

/** Option kind 200: unassigned by IANA, so no middlebox can know what it means. */
export const UNKNOWN_OPTION_KIND = 200;

/** The script of tests that only need a connection: an ordinary handshake, then an orderly close. */
export async function connectAndClose(connection: ProbeConnection): Promise<void> {
  const synAck = await connection.connect({ options: defaultSynOptions() });
  if (synAck) await connection.close();
}

/**
 * An ordinary handshake (the SYN Linux would send): the SYN-ACK, or undefined when none came or the
 * answer was a RST (there is then no connection to probe).
 */
export async function handshake(connection: ProbeConnection): Promise<Observed | undefined> {
  const synAck = await connection.connect({ options: defaultSynOptions() });
  return synAck && !isRst(synAck) ? synAck : undefined;
}

/**
 * handshake, then a pause of settleMs before the probe, for tests whose probe is sent only once: the
 * SYN-ACK, or undefined (and no pause) when the handshake failed or was reset.
 */
export async function settledHandshake(connection: ProbeConnection): Promise<Observed | undefined> {
  const synAck = await handshake(connection);
  if (synAck) await connection.linger(settleMs(connection));
  return synAck;
}

/**
 * The script of tests whose probe is one data segment: an ordinary handshake, `bytes` of payload
 * shaped for the port (with `extra` in the segment), then an orderly close (endAfter: a RST if the
 * segment went unanswered). Nothing is sent after a handshake that failed or was reset.
 */
export async function connectSendAndClose(connection: ProbeConnection, context: RunContext, bytes: number, extra?: Partial<SegmentSpec>): Promise<void> {
  const synAck = await handshake(connection);
  if (!synAck) return;
  await endAfter(connection, await connection.sendData(context.payload(bytes), extra));
}

/**
 * Ends a connection after its probe, by how the probe was answered: an orderly close after an ACK; a
 * RST when nothing answered it (dropped, or every answer lost), since a FIN behind a segment that
 * never arrived waits as long again for nothing (a box holding the stream never gets past the gap);
 * nothing after a RST.
 */
export async function endAfter(connection: ProbeConnection, answer: Observed | undefined): Promise<void> {
  if (answer === undefined) await connection.abort();
  else if (!isRst(answer)) await connection.close();
}

/**
 * A pause between the handshake and a probe sent only once: a SYN proxy opens its connection to the
 * server only after our ACK and drops data arriving before that (a real sender would retransmit it),
 * and a split-connection proxy sets up its server side meanwhile. Two round trips, 50 ms at least.
 */
export const settleMs = (c: ProbeConnection): number => Math.max(50, Math.min(c.timing.timeoutMs, 2 * (c.rttMs ?? 0)));

/** How long a middlebox ACK may take: a few round trips, never less than 300 ms. */
export const ackWaitMs = (c: ProbeConnection): number => Math.max(300, Math.min(c.timing.timeoutMs, 4 * (c.rttMs ?? c.timing.timeoutMs)));

/** NOP, NOP, timestamps echoing the peer's latest value: what a sender that negotiated timestamps puts in a segment. */
export const timestampOptions = (c: ProbeConnection): TcpOption[] => [nop(), nop(), c.timestampOption()];

/** timestampOptions when the SYN-ACK carries a timestamps option at all (well-formed or not), else none. */
export const timestampsIfOffered = (c: ProbeConnection, synAck: Observed): TcpOption[] =>
  findOption(synAck.packet.tcp?.options, OptionKind.TIMESTAMPS) ? timestampOptions(c) : [];

/** timestampOptions only when the SYN-ACK carries a well-formed timestamps option, else none. */
export const timestampsIfWellFormed = (c: ProbeConnection, synAck: Observed): TcpOption[] => (timestampsOf(synAck) !== undefined ? timestampOptions(c) : []);
