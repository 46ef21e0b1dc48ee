import { readFileSync } from 'node:fs';
import { reservePorts, type ReservedPorts } from '../shared/net/kernel-tcp.js';
import { MbprobeError } from '../shared/wire/errors.js';

/**
 * Reserves the test ports (shared/net/kernel-tcp.ts reservePorts) where the responder may. Without
 * root, binding 80 and 443 needs CAP_NET_BIND_SERVICE, which the systemd unit does not grant: the
 * responder needs only CAP_NET_RAW and CAP_NET_ADMIN. For such a port the reservation is left out,
 * which loses nothing that matters: no program is listening there (checked in /proc/net/tcp*, else
 * PORT_IN_USE as before), ports below the unprivileged start are never handed out as ephemeral
 * ports, and only a program with that capability could listen there later (the responder's
 * nftables rule keeps test segments from it anyway).
 */
export async function reserveTestPorts(ports: number[]): Promise<ReservedPorts & { notes: string[] }> {
  try {
    return { ...(await reservePorts(ports)), notes: [] };
  } catch (error) {
    if (!(error instanceof MbprobeError) || error.code !== 'NOT_PRIVILEGED') throw error;
  }
  const start = unprivilegedPortStart();
  const privileged = ports.filter((p) => p < start);
  for (const port of privileged) {
    if (listening(port)) {
      throw new MbprobeError('PORT_IN_USE', `TCP port ${port} is already in use by another program. Stop the program that listens on it (see: ss -ltnp 'sport = :${port}') or choose other ports.`);
    }
  }
  const reserved = await reservePorts(ports.filter((p) => p >= start));
  return {
    ...reserved,
    notes: privileged.length ? [`port${privileged.length > 1 ? 's' : ''} ${privileged.join(', ')} not reserved (that needs CAP_NET_BIND_SERVICE); nothing listens there, and the firewall rule keeps test segments from the kernel`] : [],
  };
}

function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return 1024;
  }
}

/** Whether a TCP socket in this network namespace listens on `port` (IPv4 or IPv6). */
export function listening(port: number): boolean {
  const LISTEN = '0A';
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== LISTEN) continue;
      if (parseInt(fields[1].split(':')[1], 16) === port) return true;
    }
  }
  return false;
}
