import { describe, expect, it } from 'vitest';
import { formatWanSpec, parseWanSpec, seededRandom, wanDirection } from '../../lab/wan.js';
import { lossApplies } from '../../lab/daemons/wan.js';
import { LabError } from '../../lab/profile.js';

describe('the WAN emulator (lab/wan.ts)', () => {
  it('reads delay, jitter and loss for both directions, or per direction', () => {
    expect(parseWanSpec('delay=50ms,loss=10%,jitter=30ms')).toEqual({
      up: { delayMs: 50, jitterMs: 30, loss: 0.1 }, down: { delayMs: 50, jitterMs: 30, loss: 0.1 }, seed: 1,
    });
    expect(parseWanSpec('delay=0.1s,up.loss=0.05,down.jitter=5ms,seed=7')).toEqual({
      up: { delayMs: 100, jitterMs: 0, loss: 0.05 }, down: { delayMs: 100, jitterMs: 5, loss: 0 }, seed: 7,
    });
  });

  it('writes back what it reads', () => {
    for (const text of ['delay=50ms,jitter=30ms,loss=10%,seed=1', 'up.delay=10ms,down.delay=20ms,down.loss=1%,seed=3']) {
      expect(formatWanSpec(parseWanSpec(text))).toBe(text);
    }
  });

  it('refuses what it cannot mean, saying what it expected', () => {
    for (const bad of ['', 'delay', 'delay=fast', 'loss=150%', 'lag=5ms', 'sideways.loss=1%', 'seed=-1', 'delay=20000ms']) {
      expect(() => parseWanSpec(bad), bad).toThrow(LabError);
    }
    expect(() => parseWanSpec('lag=5ms')).toThrow(/unknown key "lag"/);
  });

  it('loses about the fraction asked and delays by delay plus up to jitter, the same for the same seed', () => {
    const decide = wanDirection({ delayMs: 20, jitterMs: 10, loss: 0.1 }, seededRandom(42));
    const decisions = Array.from({ length: 20_000 }, () => decide(true));
    const lost = decisions.filter((d) => d.lost).length / decisions.length;
    expect(lost).toBeGreaterThan(0.09);
    expect(lost).toBeLessThan(0.11);
    const delays = decisions.flatMap((d) => (d.lost ? [] : [d.delayMs]));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(20);
    expect(Math.max(...delays)).toBeLessThan(30);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(mean).toBeGreaterThan(24.5);
    expect(mean).toBeLessThan(25.5);
    const again = wanDirection({ delayMs: 20, jitterMs: 10, loss: 0.1 }, seededRandom(42));
    expect(Array.from({ length: 100 }, () => again(true))).toEqual(decisions.slice(0, 100));
  });

  it('never loses a frame loss does not apply to, and keeps the others\' fate unchanged', () => {
    const a = wanDirection({ delayMs: 0, jitterMs: 0, loss: 1 }, seededRandom(1));
    expect(a(false)).toEqual({ lost: false, delayMs: 0 });
    expect(a(true)).toEqual({ lost: true });
  });

  it('applies loss to IP packets but not to ARP or IPv6 neighbour discovery', () => {
    const frame = (type: number, rest: number[] = []): Uint8Array => Uint8Array.from([...new Array(12).fill(0), type >> 8, type & 0xff, ...rest]);
    const ipv6 = (nextHeader: number, icmpType: number): number[] => [0x60, 0, 0, 0, 0, 8, nextHeader, 255, ...new Array(32).fill(0), icmpType, 0, 0, 0];
    expect(lossApplies(frame(0x0800, new Array(20).fill(0)))).toBe(true);
    expect(lossApplies(frame(0x0806, new Array(28).fill(0)))).toBe(false);
    expect(lossApplies(frame(0x86dd, ipv6(58, 135)))).toBe(false);
    expect(lossApplies(frame(0x86dd, ipv6(58, 128)))).toBe(true);
    expect(lossApplies(frame(0x86dd, ipv6(6, 0)))).toBe(true);
  });
});
