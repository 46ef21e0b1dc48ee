import { reservePorts } from '../shared/net/kernel-tcp.js';
import type { Store } from '../shared/store.js';

/**
 * Twice the maximum segment lifetime: a TCP stack doesn't reuse a connection's 4-tuple sooner, and
 * stateful middleboxes (conntrack's TIME_WAIT, SYN proxies) still hold state for it until then.
 */
export const TUPLE_REUSE_MS = 240_000;

/** Local ports this database's runs to `responder` used within the last 2 MSL (a responder of null: its scans, whose servers may be the same). */
export function recentlyUsedPorts(store: Store, responder: string | null, now = Date.now()): Set<number> {
  const used = new Set<number>();
  for (const run of store.runs()) {
    if (run.responder !== responder || now - Date.parse(run.startedAt) > TUPLE_REUSE_MS) continue;
    for (const port of (run.hostInfo.localPorts as number[] | undefined) ?? []) used.add(port);
  }
  return used;
}

/**
 * Reserves `count` local ports (bound, so no other program takes them; in both families when `family`
 * is not given) that are not in `avoid`: our crafted connections leave no TIME_WAIT in our kernel, so
 * the initiator itself must not reuse a recent 4-tuple. Ports the kernel offers that are in `avoid` stay reserved, unused, until release.
 */
export async function reserveFreshPorts(count: number, avoid: ReadonlySet<number>, family?: 4 | 6): Promise<{ ports: number[]; release(): void }> {
  const reservations: Array<{ release(): void }> = [];
  const ports: number[] = [];
  for (let round = 0; round < 8 && ports.length < count; round++) {
    const reserved = await reservePorts(new Array<number>(count - ports.length).fill(0), family);
    reservations.push(reserved);
    ports.push(...reserved.ports.filter((p) => !avoid.has(p)));
  }
  const release = (): void => reservations.forEach((r) => r.release());
  if (ports.length < count) {
    release();
    throw new Error(`could only reserve ${ports.length} of ${count} fresh local ports`);
  }
  return { ports, release };
}
