import { readU16, readU32, toHex, writeU16, writeU32, checkField } from './bytes.js';
import { EncodeError } from './errors.js';
import { issue, type DecodeIssue } from './issues.js';

/**
 * A TCP option as it is on the wire: kind, the length byte, and the bytes after it. `length` unset
 * means "compute 2 + data.length"; set means "write as given", so a test can craft length 0 or 1, or
 * an option running past the header. EOL (0) and NOP (1) are one byte: no length, no data.
 * Typed views (mss, sack blocks, timestamps, ...) are derived from this, never stored beside it.
 */
export interface TcpOption {
  kind: number;
  length?: number;
  data: Uint8Array;
}

export const OptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
  MPTCP: 30,
  TFO: 34,
  EXPERIMENT_1: 253,
  EXPERIMENT_2: 254,
} as const;

export const MptcpSubtype = { MP_CAPABLE: 0, MP_JOIN: 1, DSS: 2, ADD_ADDR: 3, REMOVE_ADDR: 4, MP_PRIO: 5, MP_FAIL: 6, MP_FASTCLOSE: 7, MP_TCPRST: 8 } as const;
const MPTCP_SUBTYPE_NAMES = ['mp-capable', 'mp-join', 'dss', 'add-addr', 'remove-addr', 'mp-prio', 'mp-fail', 'mp-fastclose', 'mp-tcprst'];

export type OptionView =
  | { type: 'eol' }
  | { type: 'nop' }
  | { type: 'mss'; mss: number }
  | { type: 'window-scale'; shift: number }
  | { type: 'sack-permitted' }
  | { type: 'sack'; blocks: Array<[left: number, right: number]> }
  | { type: 'timestamps'; value: number; echo: number }
  | { type: 'tfo'; cookie: Uint8Array }
  | { type: 'mptcp'; subtype: number; subtypeName: string; mpCapable?: MpCapable; dss?: MptcpDss }
  | { type: 'experimental'; exid: number; data: Uint8Array }
  | { type: 'unknown'; kind: number; data: Uint8Array }
  | { type: 'malformed'; kind: number; reason: string };

export interface MpCapable {
  version: number;
  flags: number;
  senderKey?: bigint;
  receiverKey?: bigint;
  dataLength?: number;
  checksum?: number;
}

export interface MptcpDss {
  flags: number;
  dataAck?: bigint;
  dataSequence?: bigint;
  subflowSequence?: number;
  dataLength?: number;
  checksum?: number;
}

/** One entry per option kind: adding a kind is one entry here, nothing else. */
interface OptionSpec {
  name: string;
  /** Is this data length legal for the kind? Unset: any length. */
  validDataLength?: (n: number) => boolean;
  view: (data: Uint8Array) => OptionView;
  /** tcpdump-like rendering. */
  format: (data: Uint8Array) => string;
}

const OPTION_SPECS: Record<number, OptionSpec> = {
  [OptionKind.MSS]: {
    name: 'mss',
    validDataLength: (n) => n === 2,
    view: (d) => ({ type: 'mss', mss: readU16(d, 0) }),
    format: (d) => `mss ${readU16(d, 0)}`,
  },
  [OptionKind.WINDOW_SCALE]: {
    name: 'window-scale',
    validDataLength: (n) => n === 1,
    view: (d) => ({ type: 'window-scale', shift: d[0] }),
    format: (d) => `wscale ${d[0]}`,
  },
  [OptionKind.SACK_PERMITTED]: {
    name: 'sack-permitted',
    validDataLength: (n) => n === 0,
    view: () => ({ type: 'sack-permitted' }),
    format: () => 'sackOK',
  },
  [OptionKind.SACK]: {
    name: 'sack',
    validDataLength: (n) => n > 0 && n % 8 === 0,
    view: (d) => ({ type: 'sack', blocks: sackBlocksOf(d) }),
    format: (d) => {
      const blocks = sackBlocksOf(d);
      return `sack ${blocks.length} ${blocks.map(([l, r]) => `{${l}:${r}}`).join('')}`;
    },
  },
  [OptionKind.TIMESTAMPS]: {
    name: 'timestamps',
    validDataLength: (n) => n === 8,
    view: (d) => ({ type: 'timestamps', value: readU32(d, 0), echo: readU32(d, 4) }),
    format: (d) => `TS val ${readU32(d, 0)} ecr ${readU32(d, 4)}`,
  },
  [OptionKind.MPTCP]: {
    name: 'mptcp',
    validDataLength: (n) => n >= 1,
    view: viewMptcp,
    format: (d) => {
      const v = viewMptcp(d);
      if (v.type !== 'mptcp') return `mptcp malformed`;
      if (v.mpCapable) return `mptcp capable v${v.mpCapable.version}${v.mpCapable.senderKey !== undefined ? ` key 0x${v.mpCapable.senderKey.toString(16)}` : ''}`;
      if (v.dss) {
        const parts = ['mptcp dss'];
        if (v.dss.dataAck !== undefined) parts.push(`ack ${v.dss.dataAck}`);
        if (v.dss.dataSequence !== undefined) parts.push(`seq ${v.dss.dataSequence} subseq ${v.dss.subflowSequence} len ${v.dss.dataLength}`);
        return parts.join(' ');
      }
      return `mptcp ${v.subtypeName}`;
    },
  },
  [OptionKind.TFO]: {
    name: 'tfo',
    // RFC 7413: empty (cookie request) or a 4..16 byte cookie of even length.
    validDataLength: (n) => n === 0 || (n >= 4 && n <= 16 && n % 2 === 0),
    view: (d) => ({ type: 'tfo', cookie: d }),
    format: (d) => (d.length === 0 ? 'tfo cookiereq' : `tfo cookie ${toHex(d)}`),
  },
  [OptionKind.EXPERIMENT_1]: experimentalSpec(),
  [OptionKind.EXPERIMENT_2]: experimentalSpec(),
};

function experimentalSpec(): OptionSpec {
  // RFC 6994: the first two data bytes are the experiment identifier (ExID).
  return {
    name: 'experimental',
    validDataLength: (n) => n >= 2,
    view: (d) => ({ type: 'experimental', exid: readU16(d, 0), data: d.subarray(2) }),
    format: (d) => `exp-${readU16(d, 0).toString(16)}${d.length > 2 ? ` 0x${toHex(d.subarray(2))}` : ''}`,
  };
}

function sackBlocksOf(d: Uint8Array): Array<[number, number]> {
  const blocks: Array<[number, number]> = [];
  for (let i = 0; i + 8 <= d.length; i += 8) blocks.push([readU32(d, i), readU32(d, i + 4)]);
  return blocks;
}

function readU64(d: Uint8Array, at: number): bigint {
  return (BigInt(readU32(d, at)) << 32n) | BigInt(readU32(d, at + 4));
}

function viewMptcp(d: Uint8Array): OptionView {
  const subtype = d[0] >>> 4;
  const subtypeName = MPTCP_SUBTYPE_NAMES[subtype] ?? `subtype-${subtype}`;
  if (subtype === MptcpSubtype.MP_CAPABLE && d.length >= 2) {
    // RFC 8684 3.1: lengths 4 (SYN), 12 (SYN-ACK), 20 (third ACK), 22/24 (with data).
    const c: MpCapable = { version: d[0] & 0x0f, flags: d[1] };
    if (d.length >= 10) c.senderKey = readU64(d, 2);
    if (d.length >= 18) c.receiverKey = readU64(d, 10);
    if (d.length >= 20) c.dataLength = readU16(d, 18);
    if (d.length >= 22) c.checksum = readU16(d, 20);
    return { type: 'mptcp', subtype, subtypeName, mpCapable: c };
  }
  if (subtype === MptcpSubtype.DSS && d.length >= 2) {
    const flags = d[1];
    const dss: MptcpDss = { flags };
    let at = 2;
    const need = (n: number): boolean => at + n <= d.length;
    if (flags & 0x01) {
      const wide = (flags & 0x02) !== 0;
      if (!need(wide ? 8 : 4)) return { type: 'malformed', kind: OptionKind.MPTCP, reason: 'DSS data ACK runs past the option' };
      dss.dataAck = wide ? readU64(d, at) : BigInt(readU32(d, at));
      at += wide ? 8 : 4;
    }
    if (flags & 0x04) {
      const wide = (flags & 0x08) !== 0;
      if (!need((wide ? 8 : 4) + 6)) return { type: 'malformed', kind: OptionKind.MPTCP, reason: 'DSS mapping runs past the option' };
      dss.dataSequence = wide ? readU64(d, at) : BigInt(readU32(d, at));
      at += wide ? 8 : 4;
      dss.subflowSequence = readU32(d, at);
      dss.dataLength = readU16(d, at + 4);
      at += 6;
      if (need(2)) dss.checksum = readU16(d, at);
    }
    return { type: 'mptcp', subtype, subtypeName, dss };
  }
  return { type: 'mptcp', subtype, subtypeName };
}

export function optionName(kind: number): string {
  if (kind === OptionKind.EOL) return 'eol';
  if (kind === OptionKind.NOP) return 'nop';
  return OPTION_SPECS[kind]?.name ?? `kind-${kind}`;
}

/** The typed view of an option; a known kind with an illegal length is `malformed`, not an exception. */
export function viewOption(option: TcpOption): OptionView {
  if (option.kind === OptionKind.EOL) return { type: 'eol' };
  if (option.kind === OptionKind.NOP) return { type: 'nop' };
  const declared = option.length ?? option.data.length + 2;
  if (declared !== option.data.length + 2) {
    return { type: 'malformed', kind: option.kind, reason: `length byte ${declared} but ${option.data.length + 2} bytes present` };
  }
  const spec = OPTION_SPECS[option.kind];
  if (!spec) return { type: 'unknown', kind: option.kind, data: option.data };
  if (spec.validDataLength && !spec.validDataLength(option.data.length)) {
    return { type: 'malformed', kind: option.kind, reason: `${spec.name} with length ${declared} is not legal` };
  }
  return spec.view(option.data);
}

export function formatOption(option: TcpOption): string {
  const v = viewOption(option);
  if (v.type === 'eol') return 'eol';
  if (v.type === 'nop') return 'nop';
  if (v.type === 'malformed') return `bad-opt-${option.kind} len ${option.length ?? option.data.length + 2}`;
  if (v.type === 'unknown') return `unknown-${option.kind} 0x${toHex(option.data)}`;
  return OPTION_SPECS[option.kind].format(option.data);
}

// ---- Constructors: what test cases use to say what they send. ----

export const nop = (): TcpOption => ({ kind: OptionKind.NOP, data: new Uint8Array(0) });
export const eol = (): TcpOption => ({ kind: OptionKind.EOL, data: new Uint8Array(0) });

export function mss(value: number): TcpOption {
  const d = new Uint8Array(2);
  writeU16(d, 0, checkField('option', 'mss', value, 16));
  return { kind: OptionKind.MSS, data: d };
}

export function windowScale(shift: number): TcpOption {
  return { kind: OptionKind.WINDOW_SCALE, data: Uint8Array.of(checkField('option', 'window scale', shift, 8)) };
}

export const sackPermitted = (): TcpOption => ({ kind: OptionKind.SACK_PERMITTED, data: new Uint8Array(0) });

export function sack(blocks: ReadonlyArray<readonly [number, number]>): TcpOption {
  const d = new Uint8Array(blocks.length * 8);
  blocks.forEach(([l, r], i) => {
    writeU32(d, i * 8, checkField('option', 'sack left edge', l, 32));
    writeU32(d, i * 8 + 4, checkField('option', 'sack right edge', r, 32));
  });
  return { kind: OptionKind.SACK, data: d };
}

export function timestamps(value: number, echo: number): TcpOption {
  const d = new Uint8Array(8);
  writeU32(d, 0, checkField('option', 'timestamp value', value, 32));
  writeU32(d, 4, checkField('option', 'timestamp echo', echo, 32));
  return { kind: OptionKind.TIMESTAMPS, data: d };
}

/** TCP Fast Open: no cookie = cookie request. */
export function fastOpen(cookie: Uint8Array = new Uint8Array(0)): TcpOption {
  return { kind: OptionKind.TFO, data: cookie.slice() };
}

/** MP_CAPABLE as sent in a SYN (RFC 8684, version 1: no key) or with the sender's key (version 0 / SYN-ACK). */
export function mptcpCapable(opts: { version?: number; flags?: number; senderKey?: bigint; receiverKey?: bigint } = {}): TcpOption {
  const parts: number[] = [(MptcpSubtype.MP_CAPABLE << 4) | (opts.version ?? 1), opts.flags ?? 0x81];
  const push64 = (v: bigint): void => {
    for (let s = 56n; s >= 0n; s -= 8n) parts.push(Number((v >> s) & 0xffn));
  };
  if (opts.senderKey !== undefined) push64(opts.senderKey);
  if (opts.receiverKey !== undefined) push64(opts.receiverKey);
  return { kind: OptionKind.MPTCP, data: Uint8Array.from(parts) };
}

/** A DSS option with a 4-byte data ACK and a 4-byte mapping (no checksum). */
export function mptcpDss(opts: { dataAck?: number; dataSequence?: number; subflowSequence?: number; dataLength?: number }): TcpOption {
  const parts: number[] = [MptcpSubtype.DSS << 4, 0];
  const push32 = (v: number): void => void parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  if (opts.dataAck !== undefined) {
    parts[1] |= 0x01;
    push32(opts.dataAck);
  }
  if (opts.dataSequence !== undefined) {
    parts[1] |= 0x04;
    push32(opts.dataSequence);
    push32(opts.subflowSequence ?? 0);
    parts.push(((opts.dataLength ?? 0) >>> 8) & 0xff, (opts.dataLength ?? 0) & 0xff);
  }
  return { kind: OptionKind.MPTCP, data: Uint8Array.from(parts) };
}

/** RFC 6994 shared experimental option (kind 253 or 254) with a 16-bit ExID. */
export function experimental(exid: number, data: Uint8Array = new Uint8Array(0), kind: 253 | 254 = 254): TcpOption {
  const d = new Uint8Array(2 + data.length);
  writeU16(d, 0, checkField('option', 'ExID', exid, 16));
  d.set(data, 2);
  return { kind, data: d };
}

/** Any option as raw bytes, e.g. an unassigned kind, or a deliberately wrong length. */
export function rawOption(kind: number, data: Uint8Array, length?: number): TcpOption {
  return { kind: checkField('option', 'kind', kind, 8), data: data.slice(), length };
}

// ---- Wire codec for the option list. ----

export interface DecodedOptions {
  options: TcpOption[];
  /** Bytes of the option space after the list: padding after EOL, or bytes that could not be an option. */
  tail: Uint8Array;
  issues: DecodeIssue[];
}

/** `base` is the offset of `bytes` inside the TCP header, so issue offsets point into the header. */
export function decodeOptions(bytes: Uint8Array, base = 20): DecodedOptions {
  const options: TcpOption[] = [];
  const issues: DecodeIssue[] = [];
  let at = 0;
  while (at < bytes.length) {
    const kind = bytes[at];
    if (kind === OptionKind.EOL) {
      options.push(eol());
      at += 1;
      break;
    }
    if (kind === OptionKind.NOP) {
      options.push(nop());
      at += 1;
      continue;
    }
    if (at + 1 >= bytes.length) {
      issues.push(issue('bad-option-length', 'option', base + at, `option kind ${kind} has no length byte: it is the last byte of the header`));
      break;
    }
    const length = bytes[at + 1];
    if (length < 2) {
      // Length 0 or 1 can't be skipped over; keep the rest of the option space as this option's data.
      issues.push(issue('bad-option-length', 'option', base + at, `option kind ${kind} has length ${length} (minimum 2); the rest of the option space is kept unparsed`));
      options.push({ kind, length, data: bytes.slice(at + 2) });
      at = bytes.length;
      break;
    }
    if (at + length > bytes.length) {
      issues.push(issue('bad-option-length', 'option', base + at, `option kind ${kind} has length ${length} but only ${bytes.length - at} bytes are left in the header`));
      options.push({ kind, length, data: bytes.slice(at + 2) });
      at = bytes.length;
      break;
    }
    const option: TcpOption = { kind, length, data: bytes.slice(at + 2, at + length) };
    const view = viewOption(option);
    if (view.type === 'malformed') {
      issues.push(issue('bad-option-length', 'option', base + at, `${optionName(kind)}: ${view.reason}`));
    }
    options.push(option);
    at += length;
  }
  return { options, tail: bytes.slice(at), issues };
}

/** Writes the option list; `fixLengths` overwrites every length byte with 2 + data.length. */
export function encodeOptions(options: readonly TcpOption[], fixLengths = false): Uint8Array {
  let size = 0;
  for (const o of options) size += o.kind <= 1 ? 1 : 2 + o.data.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const o of options) {
    out[at++] = checkField('option', 'kind', o.kind, 8);
    if (o.kind <= 1) {
      if (o.data.length > 0) throw new EncodeError('BAD_OPTION', `${optionName(o.kind)} is a single byte and can't carry data`);
      continue;
    }
    const length = fixLengths || o.length === undefined ? 2 + o.data.length : o.length;
    out[at++] = checkField('option', `${optionName(o.kind)} length`, length, 8);
    out.set(o.data, at);
    at += o.data.length;
  }
  return out;
}

export function findOption(options: readonly TcpOption[] | undefined, kind: number): TcpOption | undefined {
  return options?.find((o) => o.kind === kind);
}
