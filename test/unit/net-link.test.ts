import { describe, expect, it } from 'vitest';
import { Dlt, dltFromCapName, ipLooksTruncated, ipOffset, isSupportedLinkType } from '../../shared/net/link.js';
import { encodePacket, TcpFlag } from '../../shared/wire/index.js';

const ip4 = encodePacket({
  ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '198.51.100.1', dst: '198.51.100.2' },
  tcp: { srcPort: 40000, dstPort: 34343, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1000 },
  payload: new Uint8Array(0),
});
const ip6 = encodePacket({
  ip: { version: 6, trafficClass: 0, flowLabel: 1, hopLimit: 64, protocol: 6, src: '2001:db8::1', dst: '2001:db8::2' },
  tcp: { srcPort: 40000, dstPort: 34343, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 1000 },
  payload: new Uint8Array(0),
});

const cat = (...parts: ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const macs = new Array<number>(12).fill(0xaa);
const stripped = (dlt: number, frame: Uint8Array): Uint8Array | undefined => {
  const off = ipOffset(dlt, frame);
  return off === undefined ? undefined : frame.subarray(off);
};

describe('link-layer stripping', () => {
  it('strips Ethernet II for IPv4 and IPv6', () => {
    expect(stripped(Dlt.EN10MB, cat(macs, [0x08, 0x00], ip4))).toEqual(ip4);
    expect(stripped(Dlt.EN10MB, cat(macs, [0x86, 0xdd], ip6))).toEqual(ip6);
  });

  it('strips 802.1Q and stacked 802.1ad/802.1Q tags', () => {
    expect(stripped(Dlt.EN10MB, cat(macs, [0x81, 0x00, 0x00, 0x07, 0x08, 0x00], ip4))).toEqual(ip4);
    expect(stripped(Dlt.EN10MB, cat(macs, [0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x07, 0x86, 0xdd], ip6))).toEqual(ip6);
    // A tag cut short is not IP.
    expect(ipOffset(Dlt.EN10MB, new Uint8Array(cat(macs, [0x81, 0x00, 0x00])))).toBeUndefined();
  });

  it('keeps Ethernet padding after the IP packet (the decoder reports it as a trailer)', () => {
    const frame = cat(macs, [0x08, 0x00], ip4, [0, 0, 0, 0, 0, 0]);
    expect(stripped(Dlt.EN10MB, frame)).toEqual(cat(ip4, [0, 0, 0, 0, 0, 0]));
  });

  it('ignores non-IP frames and IP EtherTypes carrying the wrong version', () => {
    expect(ipOffset(Dlt.EN10MB, cat(macs, [0x08, 0x06], new Array<number>(28).fill(0)))).toBeUndefined(); // ARP
    expect(ipOffset(Dlt.EN10MB, cat(macs, [0x88, 0xcc], [1, 2, 3]))).toBeUndefined(); // LLDP
    expect(ipOffset(Dlt.EN10MB, cat(macs, [0x08, 0x00], ip6))).toBeUndefined();
    expect(ipOffset(Dlt.EN10MB, cat(macs, [0x08]))).toBeUndefined();
    expect(ipOffset(Dlt.EN10MB, cat(macs, [0x08, 0x00]))).toBeUndefined(); // nothing after the header
  });

  it('strips Linux cooked v1 (SLL, 113) and v2 (SLL2, 276)', () => {
    const sll = (proto: number[]): number[] => [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, ...proto];
    expect(stripped(Dlt.LINUX_SLL, cat(sll([0x08, 0x00]), ip4))).toEqual(ip4);
    expect(stripped(Dlt.LINUX_SLL, cat(sll([0x86, 0xdd]), ip6))).toEqual(ip6);
    expect(stripped(Dlt.LINUX_SLL, cat(sll([0x81, 0x00]), [0x00, 0x07, 0x08, 0x00], ip4))).toEqual(ip4);
    expect(ipOffset(Dlt.LINUX_SLL, cat(sll([0x08, 0x06]), [0, 1]))).toBeUndefined();
    const sll2 = (proto: number[]): number[] => [...proto, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    expect(stripped(Dlt.LINUX_SLL2, cat(sll2([0x08, 0x00]), ip4))).toEqual(ip4);
    expect(stripped(Dlt.LINUX_SLL2, cat(sll2([0x86, 0xdd]), ip6))).toEqual(ip6);
    expect(ipOffset(Dlt.LINUX_SLL2, new Uint8Array(19))).toBeUndefined();
  });

  it('passes raw IP through (DLT 12, 14, 101) and checks the version for DLT IPV4/IPV6', () => {
    for (const dlt of [Dlt.RAW, Dlt.RAW_OPENBSD, Dlt.LINKTYPE_RAW]) {
      expect(stripped(dlt, ip4)).toEqual(ip4);
      expect(stripped(dlt, ip6)).toEqual(ip6);
      expect(ipOffset(dlt, new Uint8Array([0x20, 0, 0]))).toBeUndefined();
    }
    expect(stripped(Dlt.IPV4, ip4)).toEqual(ip4);
    expect(ipOffset(Dlt.IPV4, ip6)).toBeUndefined();
    expect(stripped(Dlt.IPV6, ip6)).toEqual(ip6);
    expect(ipOffset(Dlt.IPV6, ip4)).toBeUndefined();
  });

  it('strips NULL (host order) and LOOP (network order) headers', () => {
    expect(stripped(Dlt.NULL, cat([2, 0, 0, 0], ip4))).toEqual(ip4);
    expect(stripped(Dlt.NULL, cat([30, 0, 0, 0], ip6))).toEqual(ip6); // macOS AF_INET6
    expect(stripped(Dlt.NULL, cat([10, 0, 0, 0], ip6))).toEqual(ip6); // Linux AF_INET6
    expect(stripped(Dlt.LOOP, cat([0, 0, 0, 2], ip4))).toEqual(ip4);
    expect(stripped(Dlt.LOOP, cat([0, 0, 0, 24], ip6))).toEqual(ip6); // OpenBSD AF_INET6
    expect(ipOffset(Dlt.NULL, cat([7, 0, 0, 0], ip4))).toBeUndefined();
  });

  it('only looks at the first `length` bytes of a reused capture buffer', () => {
    const buffer = new Uint8Array(100);
    buffer.set(cat(macs, [0x08, 0x00]));
    expect(ipOffset(Dlt.EN10MB, buffer, 14)).toBeUndefined();
    buffer.set(ip4, 14);
    expect(ipOffset(Dlt.EN10MB, buffer, 14 + ip4.length)).toBe(14);
  });

  it('maps cap link-type names to DLT numbers', () => {
    expect(dltFromCapName('ETHERNET')).toBe(1);
    expect(dltFromCapName('LINKTYPE_LINUX_SLL')).toBe(113);
    expect(dltFromCapName('RAW')).toBe(12);
    expect(dltFromCapName('NULL')).toBe(0);
    expect(dltFromCapName('Unknown linktype 276')).toBe(276);
    expect(dltFromCapName('Unknown linktype 108')).toBe(108);
    expect(dltFromCapName('IEEE802_11_RADIO')).toBe(127);
    expect(dltFromCapName('whatever')).toBeUndefined();
    expect(isSupportedLinkType(276)).toBe(true);
    expect(isSupportedLinkType(127)).toBe(false);
  });
});

describe('truncation', () => {
  it('reports IP packets whose header claims more than was captured', () => {
    expect(ipLooksTruncated(ip4)).toBe(false);
    expect(ipLooksTruncated(ip4.subarray(0, 30))).toBe(true);
    expect(ipLooksTruncated(ip6)).toBe(false);
    expect(ipLooksTruncated(ip6.subarray(0, 50))).toBe(true);
    expect(ipLooksTruncated(cat(ip4, [0, 0]))).toBe(false); // padding is not truncation
    const jumbo = ip6.slice();
    jumbo[4] = 0;
    jumbo[5] = 0;
    expect(ipLooksTruncated(jumbo)).toBe(false);
  });
});
