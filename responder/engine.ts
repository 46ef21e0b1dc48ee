import { createHash, createHmac } from 'node:crypto';
import { fromWireOption, type ResponderPlan } from '../shared/control.js';
import { parseRequestHead, startsLikeRequest } from '../shared/http.js';
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

/** The last ISNs computed, per secret: a SYN sent again (or a SYN flood on one flow) costs a lookup, not an HMAC. */
const recentIsns = new WeakMap<Uint8Array, Map<string, number>>();
const RECENT_ISNS = 4096;

export function responderIsn(secret: Uint8Array, ip: IpHeader, tcp: TcpHeader, initiatorIsn: number): number {
  const input = `${ip.src}|${tcp.srcPort}|${ip.dst}|${tcp.dstPort}|${initiatorIsn}`;
  let recent = recentIsns.get(secret);
  if (!recent) recentIsns.set(secret, (recent = new Map()));
  const known = recent.get(input);
  if (known !== undefined) return known;
  const isn = createHmac('sha256', secret).update(input).digest().readUInt32BE(0);
  if (recent.size >= RECENT_ISNS) recent.clear();
  recent.set(input, isn);
  return isn;
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
    const options = dataOptions();
    replies.push(reply({ seq: tcp.ack, ack: (tcp.seq + length) >>> 0, flags: TcpFlag.ACK, options }));
    // After the pure ACK, never instead of it: judges read "an ACK without data" as the answer to data.
    const answer = applicationAnswer(protocolFor(tcp.dstPort), segment.payload);
    if (answer) replies.push(reply({ seq: tcp.ack, ack: (tcp.seq + length) >>> 0, flags: TcpFlag.ACK | TcpFlag.PSH, options }, answer));
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

// ---- Answers to the port's protocol ----

/**
 * The protocol spoken on a test port, as interception proxies see it: they forward a request upstream
 * only once it is complete, and relay upstream's answer; without one they time out and the test is lost.
 */
export type PortProtocol = 'http' | 'tls';

export function protocolFor(port: number): PortProtocol | undefined {
  return port === 80 ? 'http' : port === 443 ? 'tls' : undefined;
}

const CRLFCRLF = [0x0d, 0x0a, 0x0d, 0x0a];
const endsWithBlankLine = (p: Uint8Array): boolean => p.length >= 4 && CRLFCRLF.every((b, i) => p[p.length - 4 + i] === b);

/**
 * An HTTP request's last header segment: it ends with CRLFCRLF and, when it starts like a request line,
 * that line is HTTP/1.x (the HTTP/2 preface also ends with CRLFCRLF). A segment not starting like one
 * is the end of a head split across segments; statelessly, that is the segment to answer.
 */
export function endsHttpRequest(payload: Uint8Array): boolean {
  if (!endsWithBlankLine(payload)) return false;
  if (!startsLikeRequest(payload)) return true;
  const version = parseRequestHead(payload)?.requestLine.version;
  return version !== undefined && /^HTTP\/1\.[01]$/.test(version);
}

/** One whole TLS record holding a ClientHello: type 22, version 3.x, its declared length inside the payload, handshake type 1. */
export function isClientHelloRecord(payload: Uint8Array): boolean {
  if (payload.length < 9) return false;
  const recordLength = (payload[3] << 8) | payload[4];
  return payload[0] === 22 && payload[1] === 3 && payload[2] <= 4 && recordLength >= 4 && 5 + recordLength <= payload.length && payload[5] === 1;
}

/** fatal(2) handshake_failure(40) in a TLS 1.2 record: as far as a responder without state can take a handshake. */
export const TLS_HANDSHAKE_FAILURE_ALERT = Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28);

/** Longest request line echoed in a response body: keeps every response well under 300 bytes. */
const ECHOED_REQUEST_LINE = 64;

/**
 * The response to an HTTP request's last segment, a pure function of its payload (like the ISN): 200,
 * text/plain, no-store, and Connection: close so a proxy does not reuse its server connection for
 * another test. The body is the payload's length, the first 16 hex digits of its SHA-256 and the
 * request line (printable ASCII, at most 64 characters; `-` for a segment that does not start with one).
 */
export function httpResponse(payload: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(payload).digest('hex').slice(0, 16);
  const requestLine = (parseRequestHead(payload)?.requestLine.line ?? '-').replace(/[^\x20-\x7e]/g, '?').slice(0, ECHOED_REQUEST_LINE);
  const body = `mbprobe ${payload.length} ${digest}\n${requestLine}\n`;
  const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n`;
  return Uint8Array.from(head + body, (c) => c.charCodeAt(0));
}

function applicationAnswer(protocol: PortProtocol | undefined, payload: Uint8Array): Uint8Array | undefined {
  if (protocol === 'http' && endsHttpRequest(payload)) return httpResponse(payload);
  if (protocol === 'tls' && isClientHelloRecord(payload)) return TLS_HANDSHAKE_FAILURE_ALERT;
  return undefined;
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
