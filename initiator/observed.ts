/**
 * Observed segments, the judges' raw material: one segment as one side saw it (bytes, decoded, when),
 * and the predicates that say what kind of segment it is. Pure: judges, scripts and the runner share
 * these, and nothing here touches the network.
 */
import { decodePacket, type DecodedPacket } from '../shared/wire/packet.js';
import { TcpFlag } from '../shared/wire/tcp.js';

/** One segment as observed by one side, with the exact bytes. */
export interface Observed {
  atUs: number;
  bytes: Uint8Array;
  packet: DecodedPacket;
}

export const observe = (bytes: Uint8Array, atUs: number): Observed => ({ atUs, bytes, packet: decodePacket(bytes) });

/** The segment's TCP flags (0 for a packet without a TCP header). */
export const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;
export const isSyn = (o: Observed): boolean => (flagsOf(o) & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
export const isSynAck = (o: Observed): boolean => (flagsOf(o) & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);
export const isRst = (o: Observed): boolean => (flagsOf(o) & TcpFlag.RST) !== 0;
export const isFin = (o: Observed): boolean => (flagsOf(o) & TcpFlag.FIN) !== 0;
export const hasData = (o: Observed): boolean => o.packet.payload.length > 0 && (flagsOf(o) & TcpFlag.SYN) === 0;

/** An ACK that is not part of a handshake and not a reset: ACK set, SYN and RST clear, with or without data (a FIN-ACK is one). */
export const isAck = (o: Observed): boolean => o.packet.tcp !== undefined && (flagsOf(o) & TcpFlag.ACK) !== 0 && (flagsOf(o) & (TcpFlag.SYN | TcpFlag.RST)) === 0;

/** The responder's answer to a data segment: an ACK without data (a FIN-ACK also acknowledges the data), never a SYN-ACK or RST. */
export const isDataAck = (o: Observed): boolean => isAck(o) && o.packet.payload.length === 0;

/** An ACK and nothing else: of ACK, SYN, FIN and RST only ACK set, and no data (unlike isDataAck, a FIN-ACK is not one). */
export const isPureAck = (o: Observed): boolean =>
  o.packet.tcp !== undefined && (flagsOf(o) & (TcpFlag.ACK | TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) === TcpFlag.ACK && o.packet.payload.length === 0;

/** Does this segment acknowledge everything before `end`? (serial-number arithmetic) */
export const acks = (o: Observed, end: number): boolean => {
  const tcp = o.packet.tcp;
  return tcp !== undefined && (tcp.flags & TcpFlag.ACK) !== 0 && ((tcp.ack - end) | 0) >= 0;
};
