/**
 * The kernel's own count of what a capture lost. libpcap on Linux reads it with
 * getsockopt(PACKET_STATISTICS) in pcap_stats(); the `cap` binding exposes neither pcap_stats() nor
 * the socket, and /proc/net/packet has no drop column. So the capture notes which packet socket
 * libpcap opened (the AF_PACKET descriptor that appeared in /proc/self/fd during cap.open) and a
 * tiny addon (native/packet-statistics) reads that socket's counters. The kernel resets them on
 * every read; nobody else reads them (cap never calls pcap_stats), so the sums here are complete.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { requireNative } from './native-module.js';

export interface KernelCaptureStatistics {
  /** Packets that passed the capture filter, including those dropped. */
  packets: number;
  /** Packets the kernel dropped because the capture's ring buffer was full. */
  drops: number;
}

interface PacketStatisticsAddon {
  read(fd: number): [number, number];
}

const loadAddon = (): PacketStatisticsAddon =>
  requireNative<PacketStatisticsAddon>('mbprobe-packet-statistics', 'packet statistics', 'Run npm ci (it builds native/packet-statistics with node-gyp).');

/** Inodes of the packet sockets in this process's network namespace (/proc/self/net/packet). */
function packetSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  try {
    const lines = readFileSync('/proc/self/net/packet', 'utf8').trim().split('\n');
    const column = lines[0].trim().split(/\s+/).indexOf('Inode');
    for (const line of lines.slice(1)) inodes.add(line.trim().split(/\s+/)[column]);
  } catch { /* no /proc: no statistics */ }
  return inodes;
}

/** This process's descriptors that are packet sockets. */
export function packetSocketDescriptors(): Set<number> {
  const inodes = packetSocketInodes();
  const fds = new Set<number>();
  if (inodes.size === 0) return fds;
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return fds;
  }
  for (const entry of entries) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${entry}`))?.[1];
      if (inode && inodes.has(inode)) fds.add(Number(entry));
    } catch { /* closed meanwhile */ }
  }
  return fds;
}

/** Running totals of one packet socket's kernel counters; undefined when they cannot be read. */
export class KernelStatisticsReader {
  private totals: KernelCaptureStatistics = { packets: 0, drops: 0 };
  private failed = false;

  private constructor(private readonly fd: number, private readonly addon: PacketStatisticsAddon) {}

  /** The reader for the one packet socket in `after` that was not in `before`; undefined when there is not exactly one or the addon is missing. */
  static forNewSocket(before: ReadonlySet<number>, after: ReadonlySet<number>): KernelStatisticsReader | undefined {
    const fresh = [...after].filter((fd) => !before.has(fd));
    if (fresh.length !== 1) return undefined;
    try {
      return new KernelStatisticsReader(fresh[0], loadAddon());
    } catch {
      return undefined;
    }
  }

  read(): KernelCaptureStatistics | undefined {
    if (this.failed) return undefined;
    try {
      const [packets, drops] = this.addon.read(this.fd);
      this.totals = { packets: this.totals.packets + packets, drops: this.totals.drops + drops };
      return { ...this.totals };
    } catch {
      this.failed = true; // the socket is closed
      return undefined;
    }
  }
}
