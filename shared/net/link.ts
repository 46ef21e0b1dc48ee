/**
 * Link-layer stripping for captured frames: where the IP packet starts, per libpcap DLT.
 * Pure (no I/O) so it is unit-tested without a capture device.
 */

/** DLT_* values (as pcap_datalink() returns them on Linux), plus the LINKTYPE_* aliases that can appear. */
export const Dlt = {
  NULL: 0,
  EN10MB: 1,
  /** DLT_RAW on Linux and most systems. */
  RAW: 12,
  /** DLT_RAW on OpenBSD. */
  RAW_OPENBSD: 14,
  /** LINKTYPE_RAW (the savefile value; some libpcaps report it). */
  LINKTYPE_RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

const SUPPORTED = new Set<number>(Object.values(Dlt));

export function isSupportedLinkType(dlt: number): boolean {
  return SUPPORTED.has(dlt);
}

/**
 * The DLT number behind the link-type name `cap`'s open() returns ('ETHERNET', 'NULL', 'RAW',
 * 'LINKTYPE_LINUX_SLL', 'IEEE802_11_RADIO', or 'Unknown linktype <n>'); undefined if unrecognised.
 */
export function dltFromCapName(name: string): number | undefined {
  switch (name) {
    case 'ETHERNET':
      return Dlt.EN10MB;
    case 'NULL':
      return Dlt.NULL;
    case 'RAW':
      return Dlt.RAW;
    case 'LINKTYPE_LINUX_SLL':
      return Dlt.LINUX_SLL;
    case 'IEEE802_11_RADIO':
      return 127;
    default: {
      const m = /^Unknown linktype (\d+)$/.exec(name);
      return m ? Number(m[1]) : undefined;
    }
  }
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
/** 802.1Q, 802.1ad (QinQ outer) and the old pre-standard QinQ tag. */
const VLAN_TPIDS = new Set([0x8100, 0x88a8, 0x9100]);

/** Address-family values a NULL/LOOP header uses for IPv4 / IPv6 across systems (Linux, BSDs, macOS). */
const AF_INET = 2;
const AF_INET6 = new Set([10, 24, 28, 30]);

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

/** Follows an EtherType and any VLAN tags after it; returns the IP offset or undefined when not IP. */
function afterEthertype(frame: Uint8Array, length: number, type: number, offset: number): number | undefined {
  let t = type;
  let off = offset;
  while (VLAN_TPIDS.has(t)) {
    // A tag is 2 bytes of TCI followed by the next EtherType.
    if (off + 4 > length) return undefined;
    t = u16(frame, off + 2);
    off += 4;
  }
  if (t === ETHERTYPE_IPV4) return ipAt(frame, length, off, 4);
  if (t === ETHERTYPE_IPV6) return ipAt(frame, length, off, 6);
  return undefined;
}

function ipAt(frame: Uint8Array, length: number, offset: number, version?: 4 | 6): number | undefined {
  if (offset >= length) return undefined;
  const v = frame[offset] >>> 4;
  if (version !== undefined ? v !== version : v !== 4 && v !== 6) return undefined;
  return offset;
}

/**
 * Offset of the IP header inside a captured frame of link type `dlt`, or undefined when the frame is
 * not IPv4/IPv6 (ARP, LLDP, truncated link header, unsupported DLT...). Only `length` bytes of
 * `frame` are considered (the capture buffer may be larger than the packet).
 */
export function ipOffset(dlt: number, frame: Uint8Array, length = frame.length): number | undefined {
  const len = Math.min(length, frame.length);
  switch (dlt) {
    case Dlt.EN10MB:
      if (len < 14) return undefined;
      return afterEthertype(frame, len, u16(frame, 12), 14);
    case Dlt.LINUX_SLL:
      // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
      if (len < 16) return undefined;
      return afterEthertype(frame, len, u16(frame, 14), 16);
    case Dlt.LINUX_SLL2:
      // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) address length(1) address(8)
      if (len < 20) return undefined;
      return afterEthertype(frame, len, u16(frame, 0), 20);
    case Dlt.NULL:
    case Dlt.LOOP: {
      // 4-byte address family: host byte order for NULL, network order for LOOP. A live capture is
      // host order, a foreign one may not be: accept either reading.
      if (len < 4) return undefined;
      const be = ((frame[0] << 24) | (frame[1] << 16) | (frame[2] << 8) | frame[3]) >>> 0;
      const le = ((frame[3] << 24) | (frame[2] << 16) | (frame[1] << 8) | frame[0]) >>> 0;
      if (be === AF_INET || le === AF_INET) return ipAt(frame, len, 4, 4);
      if (AF_INET6.has(be) || AF_INET6.has(le)) return ipAt(frame, len, 4, 6);
      return undefined;
    }
    case Dlt.RAW:
    case Dlt.RAW_OPENBSD:
    case Dlt.LINKTYPE_RAW:
      return ipAt(frame, len, 0);
    case Dlt.IPV4:
      return ipAt(frame, len, 0, 4);
    case Dlt.IPV6:
      return ipAt(frame, len, 0, 6);
    default:
      return undefined;
  }
}

/**
 * Whether the IP header claims more bytes than were captured (the capture was cut short by the
 * snap length or the buffer). IPv6 jumbograms (payload length 0) are never reported truncated.
 */
export function ipLooksTruncated(ip: Uint8Array): boolean {
  if (ip.length < 1) return false;
  const version = ip[0] >>> 4;
  if (version === 4) {
    if (ip.length < 4) return true;
    return u16(ip, 2) > ip.length;
  }
  if (version === 6) {
    if (ip.length < 6) return true;
    const payloadLength = u16(ip, 4);
    return payloadLength !== 0 && 40 + payloadLength > ip.length;
  }
  return false;
}
