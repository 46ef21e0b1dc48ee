/**
 * Pure pcapng encoder and decoder: no I/O, bytes in and bytes out.
 *
 * Format reference: https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html
 * The writer always emits one little-endian section. The reader accepts either
 * byte order, several sections, Enhanced and Simple Packet Blocks, and skips
 * block types it does not know.
 */
import { concatBytes } from './wire/bytes.js';

export const LINKTYPE_ETHERNET = 1;
/** Raw IPv4/IPv6 packets with no link-layer header. */
export const LINKTYPE_RAW = 101;

export type TimestampResolution = 'us' | 'ns';

export interface PcapngInterface {
  linkType: number;
  name?: string;
  description?: string;
  /**
   * Default 'us'. When reading, set only if the file's resolution is exactly
   * microseconds or nanoseconds; timestamps are converted to nanoseconds either way.
   */
  resolution?: TimestampResolution;
  /** Default 262144; 0 means "no limit". */
  snapLen?: number;
}

export interface PcapngPacket {
  /** Index into PcapngFile.interfaces. */
  interfaceId: number;
  /** Nanoseconds since the Unix epoch. Simple Packet Blocks carry no timestamp and are read as 0n. */
  timestampNs: bigint;
  data: Uint8Array;
  /** Length on the wire; default data.length. */
  originalLength?: number;
  comments?: string[];
}

export interface PcapngFile {
  comment?: string;
  application?: string;
  interfaces: PcapngInterface[];
  packets: PcapngPacket[];
}

export interface PcapngIssue {
  code: 'truncated' | 'bad-block' | 'bad-magic' | 'unsupported';
  /** Byte offset in the input where the problem was found. */
  offset: number;
  message: string;
}

/**
 * With several sections, interfaces are concatenated in file order and each
 * packet's interfaceId indexes that concatenated list; comment and application
 * come from the first section that has them.
 */
export interface PcapngReadResult extends PcapngFile {
  issues: PcapngIssue[];
}

export type PcapngWriteErrorCode =
  | 'PCAPNG_UNKNOWN_INTERFACE'
  | 'PCAPNG_INVALID_LINK_TYPE'
  | 'PCAPNG_INVALID_SNAP_LEN'
  | 'PCAPNG_INVALID_RESOLUTION'
  | 'PCAPNG_INVALID_ORIGINAL_LENGTH'
  | 'PCAPNG_PACKET_EXCEEDS_SNAP_LEN'
  | 'PCAPNG_TIMESTAMP_OUT_OF_RANGE'
  | 'PCAPNG_OPTION_TOO_LONG';

export class PcapngWriteError extends Error {
  readonly code: PcapngWriteErrorCode;

  constructor(code: PcapngWriteErrorCode, message: string) {
    super(message);
    this.name = 'PcapngWriteError';
    this.code = code;
  }
}

const BLOCK_TYPE_SECTION_HEADER = 0x0a0d0d0a;
const BLOCK_TYPE_INTERFACE_DESCRIPTION = 0x00000001;
const BLOCK_TYPE_SIMPLE_PACKET = 0x00000003;
const BLOCK_TYPE_ENHANCED_PACKET = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
const SUPPORTED_MAJOR_VERSION = 1;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;
const MAX_OPTION_LENGTH = 0xffff;

// Block type and total length precede the body; the total length is repeated after it.
const BLOCK_OVERHEAD = 12;
const SECTION_HEADER_FIXED_LENGTH = 16;
const INTERFACE_DESCRIPTION_FIXED_LENGTH = 8;
const ENHANCED_PACKET_FIXED_LENGTH = 20;
const SIMPLE_PACKET_FIXED_LENGTH = 4;

const DEFAULT_SNAP_LEN = 262144;
const NANOSECONDS_PER_SECOND = 1_000_000_000n;
const UINT64_LIMIT = 1n << 64n;
const TSRESOL_DECIMAL_EXPONENT: Record<TimestampResolution, number> = { us: 6, ns: 9 };
const UNITS_PER_SECOND: Record<TimestampResolution, bigint> = { us: 1_000_000n, ns: 1_000_000_000n };

const utf8Encoder = new TextEncoder();
// Non-fatal decoding: malformed UTF-8 in a file becomes U+FFFD instead of throwing.
const utf8Decoder = new TextDecoder('utf-8');

interface EncodedOption {
  code: number;
  value: Uint8Array;
}

function paddedTo32Bits(length: number): number {
  return (length + 3) & ~3;
}

function isUint32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

export function writePcapng(file: PcapngFile): Uint8Array {
  const blocks = [encodeSectionHeader(file)];
  file.interfaces.forEach((pcapInterface, index) => blocks.push(encodeInterfaceDescription(pcapInterface, index)));
  file.packets.forEach((packet, index) => blocks.push(encodeEnhancedPacket(packet, index, file.interfaces)));
  return concatBytes(blocks);
}

function encodeSectionHeader(file: PcapngFile): Uint8Array {
  const fixed = new Uint8Array(SECTION_HEADER_FIXED_LENGTH);
  const view = new DataView(fixed.buffer);
  view.setUint32(0, BYTE_ORDER_MAGIC, true);
  view.setUint16(4, SUPPORTED_MAJOR_VERSION, true);
  view.setUint16(6, 0, true);
  // Section length -1 means "not specified"; readers walk the blocks instead.
  view.setBigInt64(8, -1n, true);

  const options: EncodedOption[] = [];
  if (file.comment !== undefined) options.push(stringOption(OPT_COMMENT, file.comment, 'file comment'));
  if (file.application !== undefined) options.push(stringOption(SHB_USERAPPL, file.application, 'application'));
  return encodeBlock(BLOCK_TYPE_SECTION_HEADER, [fixed, encodeOptions(options)]);
}

function encodeInterfaceDescription(pcapInterface: PcapngInterface, index: number): Uint8Array {
  const { linkType } = pcapInterface;
  if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) {
    throw new PcapngWriteError(
      'PCAPNG_INVALID_LINK_TYPE',
      `interface ${index} has linkType ${linkType}; use an integer 0..65535 such as LINKTYPE_RAW (101) or LINKTYPE_ETHERNET (1)`,
    );
  }
  const snapLen = snapLenOf(pcapInterface);
  if (!isUint32(snapLen)) {
    throw new PcapngWriteError(
      'PCAPNG_INVALID_SNAP_LEN',
      `interface ${index} has snapLen ${snapLen}; use an integer 0..4294967295 (0 means no limit) or omit it for ${DEFAULT_SNAP_LEN}`,
    );
  }
  const resolution = resolutionOf(pcapInterface, index);

  const fixed = new Uint8Array(INTERFACE_DESCRIPTION_FIXED_LENGTH);
  const view = new DataView(fixed.buffer);
  view.setUint16(0, linkType, true);
  view.setUint16(2, 0, true); // reserved
  view.setUint32(4, snapLen, true);

  const options: EncodedOption[] = [];
  if (pcapInterface.name !== undefined) {
    options.push(stringOption(IF_NAME, pcapInterface.name, `interface ${index} name`));
  }
  if (pcapInterface.description !== undefined) {
    options.push(stringOption(IF_DESCRIPTION, pcapInterface.description, `interface ${index} description`));
  }
  options.push({ code: IF_TSRESOL, value: Uint8Array.of(TSRESOL_DECIMAL_EXPONENT[resolution]) });
  return encodeBlock(BLOCK_TYPE_INTERFACE_DESCRIPTION, [fixed, encodeOptions(options)]);
}

function encodeEnhancedPacket(packet: PcapngPacket, index: number, interfaces: PcapngInterface[]): Uint8Array {
  const { interfaceId, data } = packet;
  if (!Number.isInteger(interfaceId) || interfaceId < 0 || interfaceId >= interfaces.length) {
    throw new PcapngWriteError(
      'PCAPNG_UNKNOWN_INTERFACE',
      `packet ${index} references interface ${interfaceId}, but only ${interfaces.length} interface(s) are defined; ` +
        `add it to file.interfaces or use an interfaceId in 0..${interfaces.length - 1}`,
    );
  }
  const pcapInterface = interfaces[interfaceId];
  const snapLen = snapLenOf(pcapInterface);
  if (snapLen !== 0 && data.length > snapLen) {
    throw new PcapngWriteError(
      'PCAPNG_PACKET_EXCEEDS_SNAP_LEN',
      `packet ${index} has ${data.length} bytes but interface ${interfaceId} has snapLen ${snapLen}; ` +
        `truncate data to snapLen (keeping originalLength) or raise the interface's snapLen`,
    );
  }
  const originalLength = packet.originalLength ?? data.length;
  if (!isUint32(originalLength) || originalLength < data.length) {
    throw new PcapngWriteError(
      'PCAPNG_INVALID_ORIGINAL_LENGTH',
      `packet ${index} has originalLength ${originalLength} but ${data.length} captured bytes; ` +
        `originalLength must be an integer >= data.length and <= 4294967295, or omitted`,
    );
  }
  const timestampUnits = timestampNsToUnits(packet.timestampNs, resolutionOf(pcapInterface, interfaceId), index);

  const fixed = new Uint8Array(ENHANCED_PACKET_FIXED_LENGTH);
  const view = new DataView(fixed.buffer);
  view.setUint32(0, interfaceId, true);
  view.setUint32(4, Number(timestampUnits >> 32n), true);
  view.setUint32(8, Number(timestampUnits & 0xffffffffn), true);
  view.setUint32(12, data.length, true);
  view.setUint32(16, originalLength, true);

  const paddedData = new Uint8Array(paddedTo32Bits(data.length));
  paddedData.set(data);
  const options = (packet.comments ?? []).map((comment, commentIndex) =>
    stringOption(OPT_COMMENT, comment, `packet ${index} comment ${commentIndex}`),
  );
  return encodeBlock(BLOCK_TYPE_ENHANCED_PACKET, [fixed, paddedData, encodeOptions(options)]);
}

/** Truncates toward zero when the interface's resolution is coarser than a nanosecond, as capture tools do. */
function timestampNsToUnits(timestampNs: bigint, resolution: TimestampResolution, packetIndex: number): bigint {
  const units = (timestampNs * UNITS_PER_SECOND[resolution]) / NANOSECONDS_PER_SECOND;
  if (timestampNs < 0n || units >= UINT64_LIMIT) {
    throw new PcapngWriteError(
      'PCAPNG_TIMESTAMP_OUT_OF_RANGE',
      `packet ${packetIndex} has timestampNs ${timestampNs}, which does not fit an unsigned 64-bit count of ` +
        `${resolution === 'us' ? 'microseconds' : 'nanoseconds'}; use a non-negative time since the Unix epoch`,
    );
  }
  return units;
}

function snapLenOf(pcapInterface: PcapngInterface): number {
  return pcapInterface.snapLen ?? DEFAULT_SNAP_LEN;
}

function resolutionOf(pcapInterface: PcapngInterface, index: number): TimestampResolution {
  const resolution = pcapInterface.resolution ?? 'us';
  // Guards callers from plain JavaScript, where the type does not constrain the value.
  if (!Object.hasOwn(UNITS_PER_SECOND, resolution)) {
    throw new PcapngWriteError(
      'PCAPNG_INVALID_RESOLUTION',
      `interface ${index} has resolution ${JSON.stringify(resolution)}; use 'us' or 'ns', or omit it for 'us'`,
    );
  }
  return resolution;
}

function stringOption(code: number, text: string, what: string): EncodedOption {
  const value = utf8Encoder.encode(text);
  if (value.length > MAX_OPTION_LENGTH) {
    throw new PcapngWriteError(
      'PCAPNG_OPTION_TOO_LONG',
      `${what} is ${value.length} bytes of UTF-8 but a pcapng option holds at most ${MAX_OPTION_LENGTH}; shorten it` +
        (code === OPT_COMMENT ? ' or split it into several comments' : ''),
    );
  }
  return { code, value };
}

/** Encodes options followed by opt_endofopt; no options encode to nothing. */
function encodeOptions(options: EncodedOption[]): Uint8Array {
  if (options.length === 0) return new Uint8Array(0);
  const totalLength = options.reduce((sum, option) => sum + 4 + paddedTo32Bits(option.value.length), 4);
  const bytes = new Uint8Array(totalLength);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  for (const option of options) {
    view.setUint16(offset, option.code, true);
    view.setUint16(offset + 2, option.value.length, true);
    bytes.set(option.value, offset + 4);
    offset += 4 + paddedTo32Bits(option.value.length);
  }
  view.setUint16(offset, OPT_ENDOFOPT, true);
  view.setUint16(offset + 2, 0, true);
  return bytes;
}

/** Each body part must already be a multiple of 4 bytes long. */
function encodeBlock(blockType: number, bodyParts: Uint8Array[]): Uint8Array {
  const body = concatBytes(bodyParts);
  const totalLength = BLOCK_OVERHEAD + body.length;
  const bytes = new Uint8Array(totalLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, blockType, true);
  view.setUint32(4, totalLength, true);
  bytes.set(body, 8);
  view.setUint32(totalLength - 4, totalLength, true);
  return bytes;
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

interface InterfaceClock {
  unitsPerSecond: bigint;
  offsetSeconds: bigint;
  snapLen: number;
}

interface SectionState {
  littleEndian: boolean;
  /** Index in the returned interface list of this section's interface 0. */
  firstInterfaceId: number;
  clocks: InterfaceClock[];
}

interface BlockContext {
  bytes: Uint8Array;
  view: DataView;
  result: PcapngReadResult;
  section: SectionState;
  blockOffset: number;
  bodyStart: number;
  bodyEnd: number;
}

type BlockOutcome = 'continue' | 'stop';

export function readPcapng(bytes: Uint8Array): PcapngReadResult {
  const result: PcapngReadResult = { interfaces: [], packets: [], issues: [] };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length === 0) {
    result.issues.push({ code: 'truncated', offset: 0, message: 'input is empty; a pcapng file starts with a Section Header Block' });
  }

  let section: SectionState | undefined;
  let offset = 0;
  while (offset < bytes.length) {
    const remaining = bytes.length - offset;
    // The section header's block type is a byte-order palindrome, so it can be recognised before the byte order is known.
    const startsSection = remaining >= 4 && view.getUint32(offset, true) === BLOCK_TYPE_SECTION_HEADER;
    if (startsSection && remaining >= BLOCK_OVERHEAD) {
      const littleEndian = sectionByteOrder(view, offset);
      if (littleEndian === undefined) {
        result.issues.push({ code: 'bad-magic', offset, message: 'section header has an unrecognised byte-order magic' });
        break;
      }
      section = { littleEndian, firstInterfaceId: result.interfaces.length, clocks: [] };
    }
    if (section === undefined) {
      result.issues.push(
        startsSection
          ? { code: 'truncated', offset, message: 'input ends inside the first section header' }
          : { code: 'bad-magic', offset, message: 'input does not start with a pcapng Section Header Block (0x0A0D0D0A)' },
      );
      break;
    }
    if (remaining < BLOCK_OVERHEAD) {
      result.issues.push({ code: 'truncated', offset, message: `${remaining} trailing byte(s) are too few for a block header` });
      break;
    }

    const blockType = view.getUint32(offset, section.littleEndian);
    const totalLength = view.getUint32(offset + 4, section.littleEndian);
    if (totalLength < BLOCK_OVERHEAD || totalLength % 4 !== 0) {
      result.issues.push({
        code: 'bad-block',
        offset,
        message: `block total length ${totalLength} is not a multiple of 4 of at least ${BLOCK_OVERHEAD}; cannot find the next block`,
      });
      break;
    }
    if (totalLength > remaining) {
      result.issues.push({ code: 'truncated', offset, message: `block declares ${totalLength} bytes but only ${remaining} remain` });
      break;
    }
    const trailingLength = view.getUint32(offset + totalLength - 4, section.littleEndian);
    if (trailingLength !== totalLength) {
      result.issues.push({
        code: 'bad-block',
        offset,
        message: `block total length is ${totalLength} at its start but ${trailingLength} at its end`,
      });
      break;
    }

    const context: BlockContext = {
      bytes,
      view,
      result,
      section,
      blockOffset: offset,
      bodyStart: offset + 8,
      bodyEnd: offset + totalLength - 4,
    };
    if (readBlock(blockType, context) === 'stop') break;
    offset += totalLength;
  }
  return result;
}

function sectionByteOrder(view: DataView, blockOffset: number): boolean | undefined {
  const magic = view.getUint32(blockOffset + 8, true);
  if (magic === BYTE_ORDER_MAGIC) return true;
  if (magic === BYTE_ORDER_MAGIC_SWAPPED) return false;
  return undefined;
}

function readBlock(blockType: number, context: BlockContext): BlockOutcome {
  switch (blockType) {
    case BLOCK_TYPE_SECTION_HEADER:
      return readSectionHeader(context);
    case BLOCK_TYPE_INTERFACE_DESCRIPTION:
      readInterfaceDescription(context);
      return 'continue';
    case BLOCK_TYPE_ENHANCED_PACKET:
      readEnhancedPacket(context);
      return 'continue';
    case BLOCK_TYPE_SIMPLE_PACKET:
      readSimplePacket(context);
      return 'continue';
    default:
      return 'continue';
  }
}

function readSectionHeader(context: BlockContext): BlockOutcome {
  const { view, section, result, bodyStart } = context;
  if (!hasFixedFields(context, SECTION_HEADER_FIXED_LENGTH, 'section header')) return 'stop';
  const majorVersion = view.getUint16(bodyStart + 4, section.littleEndian);
  const minorVersion = view.getUint16(bodyStart + 6, section.littleEndian);
  if (majorVersion !== SUPPORTED_MAJOR_VERSION) {
    // A different major version may change the block layout, so nothing after this point can be trusted.
    result.issues.push({
      code: 'unsupported',
      offset: context.blockOffset,
      message: `section has pcapng version ${majorVersion}.${minorVersion}; only version 1.x is supported`,
    });
    return 'stop';
  }
  for (const option of readOptions(context, bodyStart + SECTION_HEADER_FIXED_LENGTH)) {
    if (option.code === OPT_COMMENT) result.comment ??= utf8Decoder.decode(option.value);
    if (option.code === SHB_USERAPPL) result.application ??= utf8Decoder.decode(option.value);
  }
  return 'continue';
}

function readInterfaceDescription(context: BlockContext): void {
  const { view, section, result, bodyStart } = context;
  if (!hasFixedFields(context, INTERFACE_DESCRIPTION_FIXED_LENGTH, 'interface description')) return;
  const pcapInterface: PcapngInterface = {
    linkType: view.getUint16(bodyStart, section.littleEndian),
    snapLen: view.getUint32(bodyStart + 4, section.littleEndian),
  };
  // pcapng's default when if_tsresol is absent is microseconds.
  let unitsPerSecond = UNITS_PER_SECOND.us;
  let offsetSeconds = 0n;
  for (const option of readOptions(context, bodyStart + INTERFACE_DESCRIPTION_FIXED_LENGTH)) {
    switch (option.code) {
      case IF_NAME:
        pcapInterface.name = utf8Decoder.decode(option.value);
        break;
      case IF_DESCRIPTION:
        pcapInterface.description = utf8Decoder.decode(option.value);
        break;
      case IF_TSRESOL:
        if (hasOptionLength(context, option, 1)) unitsPerSecond = unitsPerSecondFromTsresol(option.value[0]);
        break;
      case IF_TSOFFSET:
        if (hasOptionLength(context, option, 8)) {
          const optionView = new DataView(option.value.buffer, option.value.byteOffset, option.value.byteLength);
          offsetSeconds = optionView.getBigInt64(0, section.littleEndian);
        }
        break;
    }
  }
  const resolution = (Object.keys(UNITS_PER_SECOND) as TimestampResolution[]).find(
    (candidate) => UNITS_PER_SECOND[candidate] === unitsPerSecond,
  );
  if (resolution !== undefined) pcapInterface.resolution = resolution;

  result.interfaces.push(pcapInterface);
  section.clocks.push({ unitsPerSecond, offsetSeconds, snapLen: pcapInterface.snapLen ?? DEFAULT_SNAP_LEN });
}

/** if_tsresol: high bit clear means 10^-n seconds per unit, high bit set means 2^-n. */
function unitsPerSecondFromTsresol(tsresol: number): bigint {
  const exponent = BigInt(tsresol & 0x7f);
  return (tsresol & 0x80) !== 0 ? 2n ** exponent : 10n ** exponent;
}

function readEnhancedPacket(context: BlockContext): void {
  const { view, bytes, section, result, bodyStart, bodyEnd } = context;
  if (!hasFixedFields(context, ENHANCED_PACKET_FIXED_LENGTH, 'enhanced packet')) return;
  const littleEndian = section.littleEndian;
  const localInterfaceId = view.getUint32(bodyStart, littleEndian);
  const timestampUnits = (BigInt(view.getUint32(bodyStart + 4, littleEndian)) << 32n) | BigInt(view.getUint32(bodyStart + 8, littleEndian));
  const capturedLength = view.getUint32(bodyStart + 12, littleEndian);
  const originalLength = view.getUint32(bodyStart + 16, littleEndian);

  const clock = clockFor(context, localInterfaceId, 'enhanced packet');
  if (clock === undefined) return;
  const dataStart = bodyStart + ENHANCED_PACKET_FIXED_LENGTH;
  if (capturedLength > bodyEnd - dataStart) {
    result.issues.push({
      code: 'bad-block',
      offset: context.blockOffset,
      message: `enhanced packet claims ${capturedLength} captured bytes but its block holds only ${bodyEnd - dataStart}; packet skipped`,
    });
    return;
  }
  const comments = readOptions(context, dataStart + paddedTo32Bits(capturedLength))
    .filter((option) => option.code === OPT_COMMENT)
    .map((option) => utf8Decoder.decode(option.value));

  const packet: PcapngPacket = {
    interfaceId: section.firstInterfaceId + localInterfaceId,
    timestampNs: unitsToNanoseconds(timestampUnits, clock),
    data: bytes.slice(dataStart, dataStart + capturedLength),
    originalLength,
  };
  if (comments.length > 0) packet.comments = comments;
  result.packets.push(packet);
}

function readSimplePacket(context: BlockContext): void {
  const { view, bytes, section, result, bodyStart, bodyEnd } = context;
  if (!hasFixedFields(context, SIMPLE_PACKET_FIXED_LENGTH, 'simple packet')) return;
  // Simple Packet Blocks always belong to the section's first interface.
  const clock = clockFor(context, 0, 'simple packet');
  if (clock === undefined) return;
  const originalLength = view.getUint32(bodyStart, section.littleEndian);
  const dataStart = bodyStart + SIMPLE_PACKET_FIXED_LENGTH;
  // The block has no captured-length field: it is the original length cut by snaplen and by the padded body.
  let capturedLength = Math.min(originalLength, bodyEnd - dataStart);
  if (clock.snapLen !== 0) capturedLength = Math.min(capturedLength, clock.snapLen);
  result.packets.push({
    interfaceId: section.firstInterfaceId,
    timestampNs: 0n,
    data: bytes.slice(dataStart, dataStart + capturedLength),
    originalLength,
  });
}

function clockFor(context: BlockContext, localInterfaceId: number, blockName: string): InterfaceClock | undefined {
  const clock = context.section.clocks[localInterfaceId];
  if (clock === undefined) {
    context.result.issues.push({
      code: 'bad-block',
      offset: context.blockOffset,
      message: `${blockName} references interface ${localInterfaceId} but its section defines ${context.section.clocks.length}; packet skipped`,
    });
  }
  return clock;
}

function unitsToNanoseconds(units: bigint, clock: InterfaceClock): bigint {
  return (units * NANOSECONDS_PER_SECOND) / clock.unitsPerSecond + clock.offsetSeconds * NANOSECONDS_PER_SECOND;
}

function hasOptionLength(context: BlockContext, option: EncodedOption, expectedLength: number): boolean {
  if (option.value.length === expectedLength) return true;
  context.result.issues.push({
    code: 'bad-block',
    offset: context.blockOffset,
    message: `option ${option.code} has length ${option.value.length}, expected ${expectedLength}; option ignored`,
  });
  return false;
}

function hasFixedFields(context: BlockContext, fixedLength: number, blockName: string): boolean {
  const bodyLength = context.bodyEnd - context.bodyStart;
  if (bodyLength >= fixedLength) return true;
  context.result.issues.push({
    code: 'bad-block',
    offset: context.blockOffset,
    message: `${blockName} block body is ${bodyLength} bytes, shorter than its ${fixedLength} fixed bytes; block skipped`,
  });
  return false;
}

/** Reads options up to opt_endofopt or the end of the block body; an overrunning option ends the list with an issue. */
function readOptions(context: BlockContext, optionsStart: number): EncodedOption[] {
  const { view, bytes, section, bodyEnd } = context;
  const options: EncodedOption[] = [];
  let cursor = optionsStart;
  while (cursor + 4 <= bodyEnd) {
    const code = view.getUint16(cursor, section.littleEndian);
    const length = view.getUint16(cursor + 2, section.littleEndian);
    if (code === OPT_ENDOFOPT) break;
    const valueStart = cursor + 4;
    if (length > bodyEnd - valueStart) {
      context.result.issues.push({
        code: 'bad-block',
        offset: cursor,
        message: `option ${code} declares ${length} bytes but only ${bodyEnd - valueStart} remain in its block; later options ignored`,
      });
      break;
    }
    options.push({ code, value: bytes.subarray(valueStart, valueStart + length) });
    cursor = valueStart + paddedTo32Bits(length);
  }
  return options;
}
