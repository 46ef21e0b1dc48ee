import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { tokenBytes } from '../shared/token.js';

/**
 * Payloads shaped like the protocol of the port, because intercepting proxies act only on traffic that
 * looks like their protocol: an HTTP request on 80, a TLS ClientHello record on 443, a plain pattern
 * elsewhere. Always exactly `length` bytes, deterministic, so sent and received bytes can be compared.
 *
 * `host` is the responder as the user named it (`--responder`: a DNS name, an IPv4 or an IPv6
 * literal): a forwarding proxy connects to the request's Host, an SNI-routing one to the ClientHello's
 * server_name, so both must name the responder.
 *
 * `token` (shared/token.ts), when given, goes where a box relaying the stream keeps it and near its
 * start: the request's path (`/<token>` instead of `/mbprobe`, when the request still fits), the ClientHello's random, the pattern's 17th to 32nd bytes (none in a shorter pattern).
 */
export function payloadFor(port: number, length: number, shape: 'auto' | 'raw' = 'auto', host?: string, token?: string): Uint8Array {
  const mark = token === undefined ? undefined : tokenBytes(token);
  if (shape === 'auto' && port === 80) return httpRequest(length, responderHost(host), token);
  if (shape === 'auto' && port === 443) return tlsClientHello(length, responderHost(host), mark);
  return withTokenInPattern(pattern(length), mark);
}

/**
 * A pattern payload with the token after its first TOKEN_OFFSET bytes, so that its start is the
 * plain pattern whatever a box makes of it (and a box that takes urgent data out of the stream takes
 * a byte before the token: urgent-pointer's is the 10th); a payload too short for that has none.
 */
function withTokenInPattern(out: Uint8Array, mark: Uint8Array | undefined): Uint8Array {
  if (mark && out.length >= TOKEN_OFFSET + mark.length) out.set(mark, TOKEN_OFFSET);
  return out;
}

const TOKEN_OFFSET = 16;

/** Ports whose payload is a request the far end answers (HTTP on 80, a ClientHello on 443). */
export const isRequestPort = (port: number): boolean => port === 80 || port === 443;

function pattern(length: number, offset = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = 0x61 + ((offset + i) % 26);
  return out;
}

// ---- The responder's name ----

export type ResponderHost =
  | { kind: 'dns'; name: string }
  | { kind: 'ipv4'; address: string }
  | { kind: 'ipv6'; address: string };

const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Labels of letters, digits, '-' and '_'; a last label of digits only would make resolvers read `1.2.3` as an address (RFC 3696 2). */
function isDnsName(name: string): boolean {
  const labels = name.split('.');
  return name.length <= 253 && labels.every((l) => DNS_LABEL.test(l)) && !/^[0-9]+$/.test(labels[labels.length - 1]);
}

/** What `--responder` names; undefined when it is none of a DNS name, an IPv4 or an IPv6 literal. */
export function responderHost(host: string | undefined): ResponderHost | undefined {
  if (host === undefined) return undefined;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  // A zone (fe80::1%eth0) means nothing beyond this host, so it is not sent.
  const unzoned = bare.split('%')[0];
  if (isIPv6(unzoned)) return { kind: 'ipv6', address: unzoned };
  if (isIPv4(bare)) return { kind: 'ipv4', address: bare };
  // SNI and Host carry the name without the root's trailing dot (RFC 6066 3).
  const name = bare.endsWith('.') ? bare.slice(0, -1) : bare;
  return isDnsName(name) ? { kind: 'dns', name } : undefined;
}

// ---- HTTP ----

/** Stable across releases, so the same test sends the same bytes whatever the tool's version. */
export const HTTP_USER_AGENT = 'mbprobe/1';
/** Used only when no usable responder name was given (payloadFor called without one); RFC 6761 reserves .test. */
const PLACEHOLDER_HOST = 'mbprobe.test';

const hostHeaderValue = (host: ResponderHost | undefined): string =>
  host === undefined ? PLACEHOLDER_HOST : host.kind === 'dns' ? host.name : host.kind === 'ipv6' ? `[${host.address}]` : host.address;

/**
 * `GET /mbprobe HTTP/1.1` (`GET /<token> HTTP/1.1` with a token) with Host, User-Agent, Accept and an
 * X-Pad header whose pattern value makes the request exactly `length` bytes. When that is too long,
 * Accept and then User-Agent are left out (most probes are 100 bytes and a long name must still fit),
 * then the token; below the shortest request, the pattern.
 */
function httpRequest(length: number, host: ResponderHost | undefined, token?: string): Uint8Array {
  const hostLine = `Host: ${hostHeaderValue(host)}\r\n`;
  // The token is the path when it fits: a request too short for it goes without (its shape matters more).
  const paths = token === undefined ? ['/mbprobe'] : [`/${token}`, '/mbprobe'];
  const heads = paths.flatMap((path) => [
    `GET ${path} HTTP/1.1\r\n${hostLine}User-Agent: ${HTTP_USER_AGENT}\r\nAccept: */*\r\nX-Pad: `,
    `GET ${path} HTTP/1.1\r\n${hostLine}User-Agent: ${HTTP_USER_AGENT}\r\nX-Pad: `,
    `GET ${path} HTTP/1.1\r\n${hostLine}X-Pad: `,
  ]);
  const tail = '\r\n\r\n';
  const head = heads.find((h) => h.length + tail.length <= length);
  const out = pattern(length);
  if (head === undefined) return withTokenInPattern(out, token === undefined ? undefined : tokenBytes(token));
  out.set(ascii(head), 0);
  out.set(ascii(tail), length - tail.length);
  return out;
}

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));

// ---- TLS ----

export const TlsExtension = { SERVER_NAME: 0, SUPPORTED_GROUPS: 10, SIGNATURE_ALGORITHMS: 13, PADDING: 21, SUPPORTED_VERSIONS: 43, KEY_SHARE: 51 } as const;

/** What one ClientHello offers; an empty list leaves its extension out. */
interface HelloProfile {
  cipherSuites: readonly number[];
  /** supported_versions (RFC 8446 4.2.1). */
  versions: readonly number[];
  /** supported_groups (RFC 8446 4.2.7). */
  groups: readonly number[];
  /** signature_algorithms (RFC 8446 4.2.3). */
  signatureAlgorithms: readonly number[];
}

/**
 * Largest first; the first that fits `length` is sent. `full` is a TLS 1.3/1.2 hello like a browser's
 * (shortened); `compact` a TLS 1.2 one; `minimal` is what an SNI router still parses (a 100-byte probe
 * with a long name leaves room for nothing else).
 */
const HELLO_PROFILES: readonly HelloProfile[] = [
  {
    // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, then ECDHE-{ECDSA,RSA} with AES-GCM and ChaCha20.
    cipherSuites: [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8],
    versions: [0x0304, 0x0303],
    // x25519, secp256r1, secp384r1.
    groups: [0x001d, 0x0017, 0x0018],
    // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, ecdsa_secp384r1_sha384, rsa_pss_rsae_sha384, rsa_pkcs1_sha384, rsa_pss_rsae_sha512, rsa_pkcs1_sha512.
    signatureAlgorithms: [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601],
  },
  { cipherSuites: [0xc02b, 0xc02f], versions: [], groups: [0x001d, 0x0017], signatureAlgorithms: [0x0403, 0x0804, 0x0401] },
  // ECDHE-RSA-AES128-GCM, and RSA-AES128-GCM for a server that wants no curve it was not told about.
  { cipherSuites: [0xc02f, 0x009c], versions: [], groups: [], signatureAlgorithms: [] },
];

/** The client random: fixed, so the probe's bytes are the same on every run (its first bytes are the connection's token when it has one). */
const CLIENT_RANDOM = new Uint8Array(createHash('sha256').update('mbprobe ClientHello random').digest());

const u8 = (v: number): number[] => [v & 0xff];
const u16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
const u24 = (v: number): number[] => [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
const u16List = (values: readonly number[]): number[] => values.flatMap(u16);
const extension = (type: number, body: readonly number[]): number[] => [...u16(type), ...u16(body.length), ...body];

/** server_name with one host_name entry (RFC 6066 3). */
function serverNameExtension(name: string): number[] {
  const entry = [0, ...u16(name.length), ...ascii(name)];
  return extension(TlsExtension.SERVER_NAME, [...u16(entry.length), ...entry]);
}

/**
 * A ClientHello record of exactly `length` bytes: record (22, 0x0301) > handshake (client_hello) >
 * client_version 0x0303, random, empty session id, suites, null compression, extensions, the last
 * being padding (RFC 7685) whose zero bytes take up whatever the rest leaves. Undefined when even an
 * empty padding extension does not fit.
 */
function clientHelloOf(profile: HelloProfile, serverName: string | undefined, length: number, mark?: Uint8Array): Uint8Array | undefined {
  const random = Uint8Array.from(CLIENT_RANDOM);
  if (mark) random.set(mark, 0);
  const extensions = [
    ...(serverName !== undefined ? serverNameExtension(serverName) : []),
    ...(profile.versions.length ? extension(TlsExtension.SUPPORTED_VERSIONS, [profile.versions.length * 2, ...u16List(profile.versions)]) : []),
    ...(profile.groups.length ? extension(TlsExtension.SUPPORTED_GROUPS, [...u16(profile.groups.length * 2), ...u16List(profile.groups)]) : []),
    // RFC 8446 9.2: supported_groups comes with key_share; an empty client_shares asks the server to pick (HelloRetryRequest).
    ...(profile.versions.includes(0x0304) ? extension(TlsExtension.KEY_SHARE, u16(0)) : []),
    ...(profile.signatureAlgorithms.length ? extension(TlsExtension.SIGNATURE_ALGORITHMS, [...u16(profile.signatureAlgorithms.length * 2), ...u16List(profile.signatureAlgorithms)]) : []),
  ];
  const helloBeforeExtensions = [
    ...u16(0x0303), ...random, ...u8(0),
    ...u16(profile.cipherSuites.length * 2), ...u16List(profile.cipherSuites),
    ...u8(1), ...u8(0),
  ];
  const RECORD_HEADER = 5;
  const HANDSHAKE_HEADER = 4;
  const EXTENSIONS_LENGTH = 2;
  const EXTENSION_HEADER = 4;
  const withoutPadding = RECORD_HEADER + HANDSHAKE_HEADER + helloBeforeExtensions.length + EXTENSIONS_LENGTH + extensions.length + EXTENSION_HEADER;
  const paddingBytes = length - withoutPadding;
  // A record carries at most 2^14 bytes (RFC 8446 5.1).
  if (paddingBytes < 0 || length - RECORD_HEADER > 0x4000) return undefined;
  const allExtensions = [...extensions, ...extension(TlsExtension.PADDING, new Array<number>(paddingBytes).fill(0))];
  const hello = [...helloBeforeExtensions, ...u16(allExtensions.length), ...allExtensions];
  const handshake = [1, ...u24(hello.length), ...hello];
  return Uint8Array.from([22, ...u16(0x0301), ...u16(handshake.length), ...handshake]);
}

/**
 * A well-formed ClientHello when one fits (server_name only for a DNS name: RFC 6066 forbids
 * literal addresses); otherwise the pattern under a ClientHello's record and handshake headers.
 */
function tlsClientHello(length: number, host: ResponderHost | undefined, mark?: Uint8Array): Uint8Array {
  const serverName = host?.kind === 'dns' ? host.name : undefined;
  for (const profile of HELLO_PROFILES) {
    const hello = clientHelloOf(profile, serverName, length, mark);
    if (hello) return hello;
  }
  const out = headersOverPattern(length);
  // Where a ClientHello's random would start.
  if (mark && length >= 11 + mark.length) out.set(mark, 11);
  return out;
}

function headersOverPattern(length: number): Uint8Array {
  const out = pattern(length);
  if (length < 9) return out;
  // TLS record: handshake(22), version 3.1, record length; handshake: client_hello(1), 24-bit length.
  const recordLength = length - 5;
  out.set([0x16, 0x03, 0x01, recordLength >> 8, recordLength & 0xff, 0x01, 0, (recordLength - 4) >> 8, (recordLength - 4) & 0xff], 0);
  if (length >= 11) out.set([0x03, 0x03], 9);
  return out;
}
