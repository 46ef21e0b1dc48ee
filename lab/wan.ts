/**
 * The lab's WAN emulator, pure part: what `--wan delay=50ms,loss=10%,jitter=30ms` means, and the
 * per-packet decision (drop, or forward after how long). The kernel here has no netem, so the lab
 * runs this in a user-space bridge (lab/daemons/wan.ts) on the initiator's access link.
 *
 * Each direction has its own delay, jitter and loss. A packet is lost with probability `loss`,
 * independently of the others; otherwise it leaves after `delay` plus a uniformly random extra of
 * up to `jitter`, so packets sent closer together than the jitter can overtake each other (the
 * reordering of real paths with parallel links or per-packet load balancing). Randomness comes from
 * a seeded generator: the same seed and the same packets give the same losses and delays.
 */
import { LabError } from './profile.js';

export interface WanDirection {
  /** One-way delay, milliseconds. */
  delayMs: number;
  /** Extra random delay, uniformly 0..jitterMs, milliseconds. */
  jitterMs: number;
  /** Probability that a packet is lost, 0..1. */
  loss: number;
}

export interface WanSpec {
  /** Initiator toward responder. */
  up: WanDirection;
  /** Responder toward initiator. */
  down: WanDirection;
  seed: number;
}

export const NO_WAN: WanDirection = Object.freeze({ delayMs: 0, jitterMs: 0, loss: 0 });

const KEYS = ['delay', 'jitter', 'loss'] as const;

function parseDuration(key: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!m) throw new LabError('EWAN', `--wan ${key}=${text}: a duration such as 50ms or 0.2s`);
  const value = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  if (value > 10_000) throw new LabError('EWAN', `--wan ${key}=${text}: at most 10 s`);
  return value;
}

function parseRatio(key: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(text.trim());
  if (!m) throw new LabError('EWAN', `--wan ${key}=${text}: a loss such as 10% or 0.1`);
  const value = Number(m[1]) / (m[2] ? 100 : 1);
  if (value > 1) throw new LabError('EWAN', `--wan ${key}=${text}: at most 100%`);
  return value;
}

/**
 * Parses `delay=50ms,jitter=30ms,loss=10%[,seed=7]`; a key prefixed `up.` or `down.` sets one
 * direction only (`up.loss=5%`), a plain key both. Unset values are 0; the default seed is 1.
 */
export function parseWanSpec(text: string): WanSpec {
  const up: WanDirection = { ...NO_WAN };
  const down: WanDirection = { ...NO_WAN };
  let seed = 1;
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw new LabError('EWAN', '--wan needs at least one of delay=, jitter=, loss= (e.g. delay=50ms,loss=10%,jitter=30ms)');
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new LabError('EWAN', `--wan: "${part}" is not key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1);
    if (key === 'seed') {
      if (!/^\d+$/.test(value.trim())) throw new LabError('EWAN', `--wan seed=${value}: a non-negative integer`);
      seed = Number(value);
      continue;
    }
    const [scope, name] = key.includes('.') ? (key.split('.', 2) as [string, string]) : ['both', key];
    if (!['both', 'up', 'down'].includes(scope) || !(KEYS as readonly string[]).includes(name)) {
      throw new LabError('EWAN', `--wan: unknown key "${key}" (known: delay, jitter, loss, seed, each of the first three also as up.KEY or down.KEY)`);
    }
    const targets = scope === 'both' ? [up, down] : scope === 'up' ? [up] : [down];
    for (const t of targets) {
      if (name === 'delay') t.delayMs = parseDuration(key, value);
      else if (name === 'jitter') t.jitterMs = parseDuration(key, value);
      else t.loss = parseRatio(key, value);
    }
  }
  return { up, down, seed };
}

/** The spec written back in the form parseWanSpec reads (both directions spelled out when they differ). */
export function formatWanSpec(spec: WanSpec): string {
  const one = (d: WanDirection, prefix: string): string[] => [
    ...(d.delayMs ? [`${prefix}delay=${d.delayMs}ms`] : []),
    ...(d.jitterMs ? [`${prefix}jitter=${d.jitterMs}ms`] : []),
    ...(d.loss ? [`${prefix}loss=${+(d.loss * 100).toFixed(3)}%`] : []),
  ];
  const same = spec.up.delayMs === spec.down.delayMs && spec.up.jitterMs === spec.down.jitterMs && spec.up.loss === spec.down.loss;
  const parts = same ? one(spec.up, '') : [...one(spec.up, 'up.'), ...one(spec.down, 'down.')];
  return [...parts, `seed=${spec.seed}`].join(',');
}

/** mulberry32: a small, fast, seedable generator of uniform numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** What happens to one packet: lost, or forwarded after `delayMs`. */
export type WanDecision = { lost: true } | { lost: false; delayMs: number };

/**
 * The per-direction decision function. `lossy` says whether loss applies to the packet at all: the
 * bridge exempts neighbour discovery (ARP, ICMPv6 ND) so that the emulated loss is the path's, not a
 * lost address resolution that stalls every packet behind it.
 */
export function wanDirection(d: WanDirection, random: () => number): (lossy: boolean) => WanDecision {
  return (lossy) => {
    // Both draws are taken for every packet so that one packet's fate does not shift the others'.
    const lossDraw = random();
    const jitterDraw = random();
    if (lossy && lossDraw < d.loss) return { lost: true };
    return { lost: false, delayMs: d.delayMs + jitterDraw * d.jitterMs };
  };
}
