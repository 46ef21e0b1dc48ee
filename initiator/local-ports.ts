import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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
 * the initiator itself must not reuse a recent 4-tuple. The kernel picks first; ports it offers that are
 * in `avoid` stay reserved, unused, until release. When it keeps offering avoided ones (a machine that
 * ran many runs in the last 2 MSL: its ledger can hold half the ephemeral range), the rest are picked at
 * random from the ephemeral range outside `avoid`, one by one (a port in use is passed over).
 */
export async function reserveFreshPorts(count: number, avoid: ReadonlySet<number>, family?: 4 | 6): Promise<{ ports: number[]; release(): void }> {
  const reservations: Array<{ release(): void }> = [];
  const ports: number[] = [];
  const release = (): void => reservations.forEach((r) => r.release());
  for (let round = 0; round < 3 && ports.length < count; round++) {
    const reserved = await reservePorts(new Array<number>(count - ports.length).fill(0), family);
    reservations.push(reserved);
    ports.push(...reserved.ports.filter((p) => !avoid.has(p)));
  }
  if (ports.length < count) {
    const [low, high] = ephemeralRange();
    const taken = new Set(ports);
    const candidates: number[] = [];
    for (let p = low; p <= high; p++) if (!avoid.has(p) && !taken.has(p)) candidates.push(p);
    while (ports.length < count && candidates.length > 0) {
      const port = candidates.splice(Math.floor(Math.random() * candidates.length), 1)[0];
      try {
        const reserved = await reservePorts([port], family);
        reservations.push(reserved);
        ports.push(port);
      } catch { /* in use (ours from an earlier round, or another program's): the next */ }
    }
  }
  if (ports.length < count) {
    release();
    throw new Error(`could only reserve ${ports.length} of ${count} fresh local ports (${avoid.size} used in the last 4 minutes are avoided)`);
  }
  return { ports, release };
}

/** The kernel's ephemeral port range (net.ipv4.ip_local_port_range), or Linux's default. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low > 0 && high >= low && high < 65536) return [low, high];
  } catch { /* not Linux, or no /proc */ }
  return [32768, 60999];
}

/**
 * The local ports this machine's runs used in the last 2 MSL, whatever database they wrote to: a
 * volunteer's second run with another --db (or the lab's runs, each with its own) reused ports of the
 * first, and a stateful box on the path still held those 4-tuples (a SYN proxy in the lab, whose
 * conntrack entry in TIME_WAIT took the new handshake's last ACK for the old connection's: it never
 * connected on, and the test said `intercepted`). One small file per run in `dir`
 * (MBPROBE_STATE_DIR, else $XDG_STATE_HOME/mbprobe or ~/.local/state/mbprobe), so runs at once never
 * write the same file; files older than 2 MSL are removed as they are read. A ledger that cannot be
 * read or written costs nothing but this protection.
 */
export class PortLedger {
  readonly dir: string;

  constructor(dir = defaultStateDir()) {
    this.dir = join(dir, 'recent-ports');
  }

  /** Ports runs to `responder` (null: scans) recorded within the last 2 MSL. */
  recent(responder: string | null, now = Date.now()): Set<number> {
    const used = new Set<number>();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return used;
    }
    for (const name of names) {
      const at = Number(name.split('-')[0]);
      if (!Number.isFinite(at)) continue;
      if (now - at > TUPLE_REUSE_MS) {
        try {
          rmSync(join(this.dir, name), { force: true });
        } catch { /* another user's, or already gone */ }
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const entry = JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as { responder?: unknown; ports?: unknown };
        if (entry.responder === responder && Array.isArray(entry.ports)) for (const p of entry.ports) if (Number.isInteger(p)) used.add(p as number);
      } catch { /* being written, or damaged: skipped */ }
    }
    return used;
  }

  /** Records the ports a run reserved (written whole: a reader never sees half of it). */
  record(runId: string, responder: string | null, ports: readonly number[], now = Date.now()): void {
    try {
      mkdirSync(this.dir, { recursive: true });
      const path = join(this.dir, `${now}-${runId}.json`);
      writeFileSync(`${path}.tmp`, JSON.stringify({ responder, ports }));
      renameSync(`${path}.tmp`, path);
    } catch { /* an unwritable state directory: runs just lose this protection */ }
  }
}

function defaultStateDir(): string {
  return process.env.MBPROBE_STATE_DIR ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'mbprobe');
}
