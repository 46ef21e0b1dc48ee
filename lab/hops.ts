/**
 * Multi-hop lab paths, pure part: what `--hops 4,middlebox=3,short-quote=2` means, and the
 * addresses of every hop. A multi-hop path is
 *
 *   initiator — hop 1 — hop 2 — ... — hop N — responder
 *
 * where every hop is a namespace that forwards (a plain Linux router) and one of them is the
 * middlebox the profile configures. The initiator and responder keep their addresses of the
 * three-namespace lab (198.18.<id>.2, 198.19.<id>.2), hop 1's left side and hop N's right side
 * take the middlebox's (198.18.<id>.1, 198.19.<id>.1), and the links between hops get /30s of
 * 198.18.<64+id>.0/24 (fd6d:6270:<id>:<10+j>::/64), addresses of the benchmarking range no
 * three-namespace lab uses.
 */
import { LabError } from './profile.js';

export interface HopsSpec {
  /** Hops between initiator and responder (the middlebox is one of them), 1..16. */
  count: number;
  /** The hop (1-based) the profile's middlebox is. */
  middlebox: number;
  /** Hops whose time-exceeded errors quote only the IP header and 8 bytes (RFC 792), sent by lab/daemons/quoter.ts. */
  shortQuote: number[];
  /** Hops whose time-exceeded errors carry an RFC 4884 MPLS label stack (an MPLS router quoting 128 bytes, RFC 4950). */
  mpls: number[];
  /** 'off': no ICMP rate limits on the hops (tests are deterministic); 'kernel': the kernel's defaults. */
  icmpRateLimit: 'off' | 'kernel';
}

export const MAX_HOPS = 16;

/**
 * `4` (four hops, the middlebox the last but one), `4,middlebox=2`, `5,middlebox=3,short-quote=2+4,mpls=5,ratelimit=kernel`.
 */
export function parseHopsSpec(text: string): HopsSpec {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  const count = Number(parts.shift());
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOPS) throw new LabError('EHOPS', `--hops ${text}: start with the number of hops, 1..${MAX_HOPS} (e.g. --hops 4,middlebox=3)`);
  const spec: HopsSpec = { count, middlebox: Math.max(1, count - 1), shortQuote: [], mpls: [], icmpRateLimit: 'off' };
  const hopList = (key: string, value: string): number[] => value.split('+').map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > count) throw new LabError('EHOPS', `--hops ${key}=${value}: hops are 1..${count}`);
    return n;
  });
  for (const part of parts) {
    const [key, value = ''] = part.split('=');
    if (key === 'middlebox') [spec.middlebox] = hopList(key, value);
    else if (key === 'short-quote') spec.shortQuote = hopList(key, value);
    else if (key === 'mpls') spec.mpls = hopList(key, value);
    else if (key === 'ratelimit' && (value === 'off' || value === 'kernel')) spec.icmpRateLimit = value;
    else throw new LabError('EHOPS', `--hops ${text}: unknown setting ${part} (middlebox=N, short-quote=N[+M], mpls=N[+M], ratelimit=off|kernel)`);
  }
  return checkHopsSpec(spec);
}

export function checkHopsSpec(spec: HopsSpec): HopsSpec {
  const inRange = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= spec.count;
  if (!Number.isInteger(spec.count) || spec.count < 1 || spec.count > MAX_HOPS) throw new LabError('EHOPS', `a lab path has 1..${MAX_HOPS} hops, not ${spec.count}`);
  if (!inRange(spec.middlebox)) throw new LabError('EHOPS', `the middlebox is one of the hops 1..${spec.count}, not ${spec.middlebox}`);
  for (const n of [...spec.shortQuote, ...spec.mpls]) if (!inRange(n)) throw new LabError('EHOPS', `hop ${n} is not one of 1..${spec.count}`);
  if (spec.shortQuote.some((n) => spec.mpls.includes(n))) throw new LabError('EHOPS', 'a hop quotes either 8 bytes of TCP (short-quote) or 128 bytes with MPLS extensions (mpls), not both');
  return spec;
}

export function formatHopsSpec(spec: HopsSpec): string {
  return [
    String(spec.count),
    `middlebox=${spec.middlebox}`,
    ...(spec.shortQuote.length ? [`short-quote=${spec.shortQuote.join('+')}`] : []),
    ...(spec.mpls.length ? [`mpls=${spec.mpls.join('+')}`] : []),
    ...(spec.icmpRateLimit !== 'off' ? [`ratelimit=${spec.icmpRateLimit}`] : []),
  ].join(',');
}

export interface HopSide {
  iface: string;
  address: string;
  address6: string;
}

/** One hop of a multi-hop path: a router, or the profile's middlebox. */
export interface LabHop {
  /** 1-based: the TTL at which a probe's copy expires here. */
  hop: number;
  namespace: string;
  role: 'router' | 'middlebox';
  /** Toward the initiator: this side's address is the one its ICMP errors come from. */
  left: HopSide;
  /** Toward the responder. */
  right: HopSide;
  shortQuote: boolean;
  mpls: boolean;
}

/** Interface names of a router hop (the middlebox keeps mb-left / mb-right). */
export const HOP_INTERFACES = Object.freeze({ left: 'hop-left', right: 'hop-right' });

/** The subnets of link j (0: initiator – hop 1, count: hop N – responder, between: hop j – hop j+1). */
export function linkSubnets(id: number, count: number, j: number): { v4: string; v6: string } {
  if (j === 0) return { v4: `198.18.${id}.0/24`, v6: `fd6d:6270:${id}:1::/64` };
  if (j === count) return { v4: `198.19.${id}.0/24`, v6: `fd6d:6270:${id}:2::/64` };
  return { v4: `198.18.${64 + id}.${4 * j}/30`, v6: `fd6d:6270:${id}:${10 + j}::/64` };
}

/** The addresses on link j: the left end's (hop j, or nothing for the initiator's link) and the right end's. */
function linkEnds(id: number, count: number, j: number): { left: [string, string]; right: [string, string] } {
  if (j === 0) return { left: [`198.18.${id}.2`, `fd6d:6270:${id}:1::2`], right: [`198.18.${id}.1`, `fd6d:6270:${id}:1::1`] };
  if (j === count) return { left: [`198.19.${id}.1`, `fd6d:6270:${id}:2::1`], right: [`198.19.${id}.2`, `fd6d:6270:${id}:2::2`] };
  return { left: [`198.18.${64 + id}.${4 * j + 1}`, `fd6d:6270:${id}:${10 + j}::1`], right: [`198.18.${64 + id}.${4 * j + 2}`, `fd6d:6270:${id}:${10 + j}::2`] };
}

/** Every hop of lab `id`'s path: namespaces, interfaces, addresses. */
export function labHops(id: number, spec: HopsSpec, middleboxNamespace: string, interfaces: { middleboxLeft: string; middleboxRight: string }): LabHop[] {
  const hops: LabHop[] = [];
  for (let n = 1; n <= spec.count; n++) {
    const isMiddlebox = n === spec.middlebox;
    const before = linkEnds(id, spec.count, n - 1);
    const after = linkEnds(id, spec.count, n);
    hops.push({
      hop: n,
      namespace: isMiddlebox ? middleboxNamespace : `mbp${id}-h${n}`,
      role: isMiddlebox ? 'middlebox' : 'router',
      left: { iface: isMiddlebox ? interfaces.middleboxLeft : HOP_INTERFACES.left, address: before.right[0], address6: before.right[1] },
      right: { iface: isMiddlebox ? interfaces.middleboxRight : HOP_INTERFACES.right, address: after.left[0], address6: after.left[1] },
      shortQuote: spec.shortQuote.includes(n),
      mpls: spec.mpls.includes(n),
    });
  }
  return hops;
}

/** The routes hop n needs: every link it is not on, via its left or right neighbour. */
export function hopRoutes(id: number, hops: readonly LabHop[], n: number): string[] {
  const count = hops.length;
  const routes: string[] = [];
  for (let j = 0; j <= count; j++) {
    if (j === n - 1 || j === n) continue;
    const subnets = linkSubnets(id, count, j);
    const via = j < n - 1 ? hops[n - 2].right : hops[n].left;
    const dev = j < n - 1 ? hops[n - 1].left.iface : hops[n - 1].right.iface;
    routes.push(`route add ${subnets.v4} via ${via.address} dev ${dev}`, `route add ${subnets.v6} via ${via.address6} dev ${dev}`);
  }
  return routes;
}
