import { createHmac } from 'node:crypto';
import { fromWireOption, type ResponderPlan } from '../shared/control.js';
import { type DecodedPacket, type IpHeader, type Packet } from '../shared/wire/packet.js';
import { TcpFlag, type TcpHeader } from '../shared/wire/tcp.js';
import { findOption, mss, nop, OptionKind, sackPermitted, timestamps, viewOption, windowScale, type TcpOption } from '../shared/wire/tcp-options.js';

/**
 * The stateless responder: every reply is a pure function of the segment received, the test's plan
 * and a secret. Its ISN is derived from the flow and the initiator's ISN (like a SYN cookie), so a
 * retransmitted SYN gets the same SYN-ACK and later segments need no connection table.
 */
export interface EngineConfig {
  secret: Uint8Array;
  mss: number;
  windowScale: number;
  ttl: number;
  nowMs: () => number;
}

/** Decode problems that make a segment unanswerable: it is recorded, never answered. */
const UNANSWERABLE = new Set(['truncated', 'bad-data-offset', 'bad-checksum', 'fragment', 'not-tcp', 'bad-version', 'bad-header-length', 'bad-total-length']);

/**
 * Every option is delimited by its own length byte (nothing runs past the header or claims length
 * 0/1) and only zeros follow the list. A known option with a length its kind does not allow (a
 * SACK-permitted of 4 bytes) is still delimited: like a real stack, the responder answers and ignores it.
 */
function optionsDelimited(tcp: TcpHeader): boolean {
  return (tcp.options ?? []).every((o) => o.kind <= 1 || o.length === undefined || o.length === o.data.length + 2) && (tcp.optionsTail ?? new Uint8Array(0)).every((b) => b === 0);
}

export function isAnswerable(segment: DecodedPacket): boolean {
  return segment.ip !== undefined && segment.tcp !== undefined && !segment.issues.some((i) => UNANSWERABLE.has(i.code)) && optionsDelimited(segment.tcp);
}

export function responderIsn(secret: Uint8Array, ip: IpHeader, tcp: TcpHeader, initiatorIsn: number): number {
  const mac = createHmac('sha256', secret).update(`${ip.src}|${tcp.srcPort}|${ip.dst}|${tcp.dstPort}|${initiatorIsn}`).digest();
  return mac.readUInt32BE(0);
}

/** The bytes the responder sends as data: a recognisable, position-dependent pattern. */
export function responderPayload(length: number, offset = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = 0x41 + ((offset + i) % 26);
  return out;
}

export function replyTo(segment: DecodedPacket, plan: ResponderPlan, config: EngineConfig): Packet[] {
  if (!isAnswerable(segment)) return [];
  const ip = segment.ip!;
  const tcp = segment.tcp!;
  const flags = tcp.flags;
  if (flags & TcpFlag.RST) return [];
  const theirTimestamp = tcpTimestamp(tcp.options);
  const reply = (fields: Pick<TcpHeader, 'seq' | 'ack' | 'flags'> & { options?: TcpOption[] }, payload: Uint8Array = new Uint8Array(0)): Packet => ({
    ip: replyIp(ip, config.ttl),
    tcp: { srcPort: tcp.dstPort, dstPort: tcp.srcPort, window: plan.window ?? 65535, ...fields },
    payload,
  });
  const dataOptions = (): TcpOption[] => [
    ...(theirTimestamp ? [nop(), nop(), timestamps(config.nowMs() >>> 0, theirTimestamp.value)] : []),
    ...(plan.ackOptions ?? []).map(fromWireOption),
  ];

  if (flags & TcpFlag.SYN && !(flags & TcpFlag.ACK)) {
    const isn = responderIsn(config.secret, ip, tcp, tcp.seq);
    // Like a host without TFO: SYN data is recorded but not acknowledged, so the initiator resends it.
    const ecnSetup = (flags & (TcpFlag.ECE | TcpFlag.CWR)) === (TcpFlag.ECE | TcpFlag.CWR) ? TcpFlag.ECE : 0;
    return [reply({ seq: isn, ack: (tcp.seq + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK | ecnSetup, options: synAckOptions(tcp.options ?? [], plan, config, theirTimestamp?.value) })];
  }
  if (!(flags & TcpFlag.ACK)) return [];

  const replies: Packet[] = [];
  const length = segment.payload.length + (flags & TcpFlag.FIN ? 1 : 0);
  if (flags & TcpFlag.FIN) {
    replies.push(reply({ seq: tcp.ack, ack: (tcp.seq + length) >>> 0, flags: TcpFlag.FIN | TcpFlag.ACK, options: dataOptions() }));
  } else if (segment.payload.length > 0 && !plan.withholdAck) {
    replies.push(reply({ seq: tcp.ack, ack: (tcp.seq + length) >>> 0, flags: TcpFlag.ACK, options: dataOptions() }));
  } else if (segment.payload.length === 0 && plan.sendBytes && isHandshakeAck(ip, tcp, config)) {
    // The third ACK of the handshake: the moment to send the data the plan asks for.
    const segmentSize = Math.min(config.mss, 1200);
    for (let offset = 0; offset < plan.sendBytes; offset += segmentSize) {
      const size = Math.min(segmentSize, plan.sendBytes - offset);
      replies.push(reply({ seq: (tcp.ack + offset) >>> 0, ack: tcp.seq, flags: TcpFlag.ACK | TcpFlag.PSH, options: dataOptions() }, responderPayload(size, offset)));
    }
  }
  return replies;
}

/** The handshake's third ACK (a later ACK carrying SACK blocks acknowledges the same numbers, but is not it). */
function isHandshakeAck(ip: IpHeader, tcp: TcpHeader, config: EngineConfig): boolean {
  if (findOption(tcp.options, OptionKind.SACK)) return false;
  const initiatorIsn = (tcp.seq - 1) >>> 0;
  return ((responderIsn(config.secret, ip, tcp, initiatorIsn) + 1) >>> 0) === tcp.ack;
}

function replyIp(ip: IpHeader, ttl: number): IpHeader {
  if (ip.version === 4) return { version: 4, tos: 0, id: 0, flags: 0x2, fragmentOffset: 0, ttl, protocol: 6, src: ip.dst, dst: ip.src };
  return { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: ttl, protocol: 6, src: ip.dst, dst: ip.src };
}

function tcpTimestamp(options: readonly TcpOption[] | undefined): { value: number; echo: number } | undefined {
  const option = findOption(options, OptionKind.TIMESTAMPS);
  const view = option && viewOption(option);
  return view?.type === 'timestamps' ? view : undefined;
}

/** Mirrors what the SYN offered, in Linux's order, then the plan's extra options. */
function synAckOptions(synOptions: readonly TcpOption[], plan: ResponderPlan, config: EngineConfig, theirTimestamp: number | undefined): TcpOption[] {
  const offered = (kind: number): boolean => synOptions.some((o) => o.kind === kind);
  const options: TcpOption[] = [mss(config.mss)];
  const sackOk = offered(OptionKind.SACK_PERMITTED);
  if (theirTimestamp !== undefined) {
    options.push(...(sackOk ? [sackPermitted()] : [nop(), nop()]), timestamps(config.nowMs() >>> 0, theirTimestamp));
  } else if (sackOk) {
    options.push(nop(), nop(), sackPermitted());
  }
  if (offered(OptionKind.WINDOW_SCALE)) options.push(nop(), windowScale(config.windowScale));
  options.push(...(plan.synAckOptions ?? []).map(fromWireOption));
  return options;
}
