/** What a scan probes and how fast (initiator/scan/): target lists, opt-out lists, reserved ranges, resolution, the SYN rate and politeness gap, the firewall rule. */
import { describe, expect, it } from 'vitest';
import {
  collectTargets, emptyExclusions, isExcluded, parseExclusions, parseTargetList, parseTargetSpec, reservedRange, resolveTarget,
} from '../../initiator/scan/targets.js';
import { SynRate, TargetPace, type Clock } from '../../initiator/scan/pace.js';
import { etaMs, formatDuration, formatProgress } from '../../initiator/scan/progress.js';
import { scanRules } from '../../initiator/scan/firewall.js';
import { keyOfSegment } from '../../initiator/scan/prober.js';
import { encodePacket } from '../../shared/wire/packet.js';
import { requestFor } from '../../initiator/catalogue/server/request.js';

describe('targets', () => {
  it('reads HOST, HOST:PORT, IPv6, [IPv6]:PORT and refuses the rest with a reason', () => {
    expect(parseTargetSpec('Example.ORG', 'argument')).toEqual({ host: 'example.org', from: 'argument' });
    expect(parseTargetSpec('example.org:8443', 'argument')).toEqual({ host: 'example.org', port: 8443, from: 'argument' });
    expect(parseTargetSpec('192.0.2.1:80', 'f:1')).toEqual({ host: '192.0.2.1', port: 80, from: 'f:1' });
    expect(parseTargetSpec('2001:db8::1', 'a')).toEqual({ host: '2001:db8::1', from: 'a' });
    expect(parseTargetSpec('[2001:db8::1]:443', 'a')).toEqual({ host: '2001:db8::1', port: 443, from: 'a' });
    expect(parseTargetSpec('example.org:99999', 'a')).toMatchObject({ reason: expect.stringContaining('port') });
    expect(parseTargetSpec('https://example.org/', 'a')).toMatchObject({ reason: expect.any(String) });
    expect(parseTargetSpec('1.2.3', 'a')).toMatchObject({ reason: expect.any(String) });
  });

  it('reads lists with comments, top lists with a rank column, CSVs with a header', () => {
    expect(parseTargetList('# my servers\nexample.org\n\n192.0.2.7:8080  # lab\n', 'list.txt')).toEqual({
      targets: [{ host: 'example.org', from: 'list.txt:2' }, { host: '192.0.2.7', port: 8080, from: 'list.txt:4' }], rejected: [],
    });
    expect(parseTargetList('1,google.com\n2,facebook.com\n3,not a host\n', 'top-1m.csv')).toEqual({
      targets: [{ host: 'google.com', from: 'top-1m.csv:1' }, { host: 'facebook.com', from: 'top-1m.csv:2' }],
      rejected: [{ text: 'not a host', from: 'top-1m.csv:3', reason: expect.any(String) }],
    });
    expect(parseTargetList('rank,origin,category\n1,"example.com",web\n', 'crux.csv').targets).toEqual([{ host: 'example.com', from: 'crux.csv:2' }]);
  });

  it('takes existing files as lists and everything else as targets, each target once', () => {
    const files: Record<string, string> = { 'list.txt': 'a.example\nb.example:80\n' };
    const io = { isFile: (p: string) => p in files, read: (p: string) => files[p] };
    const { targets, files: read } = collectTargets(['list.txt', 'c.example', 'a.example'], io);
    expect(targets.map((t) => `${t.host}${t.port ? `:${t.port}` : ''}`)).toEqual(['a.example', 'b.example:80', 'c.example']);
    expect(read).toEqual(['list.txt']);
  });

  it('knows the reserved ranges, IPv4 and IPv6', () => {
    for (const a of ['10.1.2.3', '127.0.0.1', '192.168.1.1', '172.31.0.1', '100.64.0.1', '169.254.1.1', '198.18.0.2', '198.19.3.2', '192.0.2.1', '224.0.0.1', '::1', 'fe80::1', 'fd6d:6270:1:2::2', '2001:db8::1', '::ffff:10.0.0.1']) {
      expect(reservedRange(a), a).toBeDefined();
    }
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700::1111', '2a00:1450:4001::1']) expect(reservedRange(a), a).toBeUndefined();
  });

  it('an opt-out list: addresses, prefixes, names and whole domains', () => {
    const exclusions = emptyExclusions();
    const bad = parseExclusions('# opt-outs\n203.0.113.7\n198.51.100.0/24\n2001:db8:1::/48\nexample.org\n*.example.net\n???\n', 'optout.txt', exclusions);
    expect(bad).toEqual([{ text: '???', from: 'optout.txt:7', reason: expect.any(String) }]);
    expect(exclusions.entries).toBe(5);
    expect(isExcluded(exclusions, { address: '203.0.113.7' })).toBe(true);
    expect(isExcluded(exclusions, { address: '198.51.100.99' })).toBe(true);
    expect(isExcluded(exclusions, { address: '2001:db8:1:5::1' })).toBe(true);
    expect(isExcluded(exclusions, { address: '203.0.113.8' })).toBe(false);
    expect(isExcluded(exclusions, { name: 'example.org' })).toBe(true);
    expect(isExcluded(exclusions, { name: 'www.example.org' })).toBe(false);
    expect(isExcluded(exclusions, { name: 'www.example.net' })).toBe(true);
    expect(isExcluded(exclusions, { name: 'example.net' })).toBe(true);
  });

  it('resolves to every address, or one family; a literal is itself', async () => {
    const lookup = async () => [{ address: '192.0.2.1', family: 4 }, { address: '2001:db8::1', family: 6 }, { address: '192.0.2.1', family: 4 }];
    expect(await resolveTarget({ host: 'x.example', from: 'a' }, undefined, lookup)).toEqual({ addresses: ['192.0.2.1', '2001:db8::1'] });
    expect(await resolveTarget({ host: 'x.example', from: 'a' }, 6, lookup)).toEqual({ addresses: ['2001:db8::1'] });
    expect(await resolveTarget({ host: '192.0.2.9', from: 'a' }, 6, lookup)).toEqual({ addresses: [] });
    const failing = async () => { throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' }); };
    expect(await resolveTarget({ host: 'y.example', from: 'a' }, undefined, failing)).toEqual({ addresses: [], error: 'ENOTFOUND' });
  });
});

/** A clock that moves only when slept on. */
function fakeClock(): Clock & { t: number } {
  const clock = { t: 0, now: () => clock.t, sleep: async (ms: number) => void (clock.t += ms) };
  return clock;
}

describe('pace', () => {
  it('SynRate lets `rate` SYNs a second through on average, a small burst at most', async () => {
    const clock = fakeClock();
    const rate = new SynRate(200, clock);
    expect(rate.burst).toBe(2);
    for (let i = 0; i < 1000; i++) await rate.take();
    expect(rate.sent).toBe(1000);
    // 1000 SYNs at 200/s: 5 s, less the initial burst.
    expect(clock.t).toBeGreaterThanOrEqual(4990);
    expect(clock.t).toBeLessThanOrEqual(5000);
  });

  it('TargetPace: a gap after each connection, waits from the measured round trip', async () => {
    const clock = fakeClock();
    const pace = new TargetPace(new SynRate(1_000_000, clock), 250, 1000, clock);
    await pace.firstSyn();
    expect(clock.t).toBe(0);
    expect(pace.answerWaitMs()).toBe(1000);
    pace.measured(30);
    pace.measured(80);
    expect(pace.answerWaitMs()).toBe(200);
    pace.measured(120);
    expect(pace.answerWaitMs()).toBe(200);
    pace.connectionEnded();
    clock.t += 100;
    await pace.firstSyn();
    expect(clock.t).toBe(250);
  });
});

describe('progress, firewall, dispatch, requests', () => {
  it('formats durations and the ETA', () => {
    expect([formatDuration(42_000), formatDuration(185_000), formatDuration(3_720_000)]).toEqual(['42s', '3m05s', '1h02m']);
    expect(etaMs(0, 10, 1000)).toBeUndefined();
    expect(etaMs(5, 10, 1000)).toBe(1000);
    expect(formatProgress({ done: 1, total: 4, tests: 14, synPerSecond: 199.6, elapsedMs: 10_000 })).toBe('[1/4 targets] 14 tests stored · 200 SYN/s · 10s elapsed · ETA 30s');
  });

  it('drops the servers\' answers to the reserved local ports before the kernel sees them', () => {
    expect(scanRules([40001, 40002], [443, 80])).toBe(
      '  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n    tcp sport { 443, 80 } tcp dport { 40001, 40002 } fib daddr type local drop\n  }');
    expect(() => scanRules([], [80])).toThrow();
    expect(() => scanRules([0], [80])).toThrow();
  });

  it('keys a captured segment by the server\'s address and port and our port', () => {
    const v4 = encodePacket({ ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '192.0.2.1', dst: '203.0.113.1' }, tcp: { srcPort: 443, dstPort: 40001, seq: 1, ack: 2, flags: 0x12, window: 1 }, payload: new Uint8Array(0) });
    const v6 = encodePacket({ ip: { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, protocol: 6, src: '2001:db8::1', dst: '2001:db8::2' }, tcp: { srcPort: 80, dstPort: 40002, seq: 1, ack: 2, flags: 0x12, window: 1 }, payload: new Uint8Array(0) });
    expect(keyOfSegment(v4)).toBe('192.0.2.1|443|40001');
    expect(keyOfSegment(v6)).toBe('2001:db8::1|80|40002');
    expect(keyOfSegment(Uint8Array.of(0x45, 0, 0))).toBeUndefined();
  });

  it('sends an HTTP HEAD naming mbprobe on every port but 443, a ClientHello with SNI on 443', () => {
    const http = new TextDecoder().decode(requestFor({ address: '2001:db8::1', port: 8080 }, 'scans@example.org'));
    expect(http).toBe('HEAD / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\nUser-Agent: mbprobe-scan/1 (TCP feature measurement; contact: scans@example.org)\r\nConnection: close\r\n\r\n');
    const hello = requestFor({ address: '192.0.2.1', name: 'example.org', port: 443 });
    expect(hello.length).toBe(517);
    expect([hello[0], hello[5]]).toEqual([22, 1]);
    expect(Buffer.from(hello).includes(Buffer.from('example.org'))).toBe(true);
  });
});
