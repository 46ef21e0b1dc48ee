/**
 * Packet capture with `cap` (libpcap). Delivers IP packets (link header stripped, copied out of
 * cap's single reusable buffer) as soon as libpcap hands them over.
 *
 * Immediate delivery: cap 0.2.1 itself calls pcap_set_immediate_mode(1) on Linux before activating
 * (it looks the symbol up with dlsym, which resolves through cap.node's own libpcap dependency even
 * when the unversioned libpcap.so dev symlink is absent), so libpcap uses TPACKET_V2 without block
 * timeouts and each packet wakes the event loop. Nothing extra is needed here; the integration test
 * measures the send-to-callback delay between two network namespaces.
 */
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { MbprobeError } from '../wire/errors.js';
import { routeTo } from './route.js';
import { requireNative } from './native-module.js';
import { dltFromCapName, ipLooksTruncated, ipOffset, isSupportedLinkType } from './link.js';
import { KernelStatisticsReader, packetSocketDescriptors, type KernelCaptureStatistics } from './packet-statistics.js';

export interface CapturedPacket {
  /** The IP packet (link header stripped), copied out of cap's buffer; any link-layer trailer (Ethernet padding) is kept. */
  bytes: Uint8Array;
  /** Microseconds since the epoch when the packet reached JavaScript (cap does not expose libpcap's own timestamp). */
  atUs: number;
  /** The packet was cut short: it did not fit the snap length, or the IP header claims more bytes than were captured. */
  truncated: boolean;
}

export interface PacketSource {
  onPacket(listener: (p: CapturedPacket) => void): void;
  close(): void;
  /**
   * How long, in microseconds, the packet being delivered waited between reaching JavaScript and its
   * listeners (a queued capture under load; 0 when delivered as it arrived): how far behind the packet
   * loop is.
   */
  lagUs?(): number;
  /** Packets the capture lost so far, all causes together (the kernel's ring, the queue). */
  lost?(): number;
}

/** What a capture saw and lost so far. */
export interface CaptureStatistics {
  /** IP packets handed to JavaScript by libpcap. */
  delivered: number;
  /** Packets thrown away because the queue (CaptureOptions.queue) was full. */
  queueDropped: number;
  /** The kernel's counters of libpcap's packet socket (passed the filter / dropped, ring full); undefined when unreadable. */
  kernel?: KernelCaptureStatistics;
}

/** What openCapture returns: a PacketSource plus what it is attached to. */
export interface LiveCapture extends PacketSource {
  readonly iface: string;
  /** libpcap DLT of the interface (1 Ethernet, 113 Linux cooked, 12 raw IP, ...). */
  readonly linkType: number;
  statistics(): CaptureStatistics;
}

export interface CaptureOptions {
  iface: string;
  /** pcap-filter(7) expression; '' captures everything. */
  filter: string;
  /** Largest frame (link header included) delivered whole; longer ones arrive truncated. Default 65535 (cap's fixed libpcap snaplen). */
  snapLen?: number;
  /** Kernel ring buffer size for libpcap. Default 4 MiB. */
  bufferBytes?: number;
  /**
   * Deliver packets from a queue of at most this many, drained once per event-loop turn, instead
   * of one by one as libpcap hands them over. libpcap's ring then empties at the speed of a copy,
   * so a burst waits in JavaScript memory (small packets) rather than in ring slots of a whole
   * snap length each (on "any", 64 KiB per packet); beyond the limit packets are counted as lost.
   */
  queue?: number;
}

const MAX_SNAPLEN = 65535;
const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;
/** Longest stretch of queued packets delivered in one event-loop turn (CaptureOptions.queue). */
const DRAIN_SLICE_MS = 2;

/** Microseconds since the epoch, from the monotonic clock anchored at process start (same clock as CapturedPacket.atUs). */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

type CapModule = typeof import('cap');

const loadCap = (): CapModule => requireNative<CapModule>('cap', 'packet capture', 'Install libpcap-dev (apt-get install libpcap-dev) and run npm rebuild cap.');

/**
 * Every Cap object ever created stays referenced for the life of the process, because of two
 * memory-safety bugs in cap 0.2.1 that crash the process once the garbage collector frees one:
 *  - close() only uv_poll_stop()s its poll handle, never uv_close()s it, so the handle (embedded in
 *    the native object) stays linked in libuv's handle queue. When GC deletes the closed object,
 *    libuv later writes into freed memory (valgrind: invalid write in uv__queue_remove /
 *    uv__queue_insert_tail) and the process dies with SIGSEGV some time later.
 *  - when open() throws after pcap_create() (bad filter, no privileges), the half-initialised
 *    object's destructor calls uv_poll_stop() on a never-initialised poll handle and aborts.
 * The cost is one small native object per opened capture (the 64 KiB packet buffer is released).
 */
const retainedCaps: unknown[] = [];

/** Names of the capture devices libpcap sees (in this process's network namespace). */
export function listInterfaces(): string[] {
  return loadCap().Cap.deviceList().map((d) => d.name);
}

function isPermissionError(message: string): boolean {
  return /permission|not permitted|EPERM|EACCES/i.test(message);
}

/** Opens libpcap on an interface (checked, with errors that say what to do): the handle, its buffer and link type. */
function openHandle(opts: CaptureOptions, requireIpLink: boolean): { cap: InstanceType<CapModule['Cap']>; buffer: Buffer; linkType: number; kernel?: KernelStatisticsReader } {
  const { Cap } = loadCap();
  const snapLen = opts.snapLen ?? MAX_SNAPLEN;
  const bufferBytes = opts.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  if (!Number.isInteger(snapLen) || snapLen < 1 || snapLen > MAX_SNAPLEN) {
    throw new MbprobeError('INVALID_ARGUMENT', `snapLen must be an integer from 1 to ${MAX_SNAPLEN}, got ${snapLen}`);
  }
  if (!Number.isInteger(bufferBytes) || bufferBytes < 65536 || bufferBytes > 0x7fffffff) {
    throw new MbprobeError('INVALID_ARGUMENT', `bufferBytes must be an integer of at least 65536, got ${bufferBytes}`);
  }

  const available = listInterfaces();
  if (!available.includes(opts.iface)) {
    throw new MbprobeError(
      'INTERFACE_NOT_FOUND',
      `No network interface "${opts.iface}". Available: ${available.join(', ') || '(none)'}`,
    );
  }

  const cap = new Cap();
  retainedCaps.push(cap);
  // cap copies every packet into this one buffer; its length is the effective snap length.
  const buffer = Buffer.alloc(snapLen);
  let linkName: string;
  // The packet socket libpcap opens is the one that appears during open(): its kernel counters are the capture's losses.
  const socketsBefore = packetSocketDescriptors();
  try {
    linkName = cap.open(opts.iface, opts.filter, bufferBytes, buffer);
  } catch (err) {
    const message = (err as Error).message;
    if (isPermissionError(message)) {
      throw new MbprobeError(
        'NOT_PRIVILEGED',
        `Capturing on ${opts.iface} needs root (or CAP_NET_RAW and CAP_NET_ADMIN): run as root, e.g. with sudo. (${message})`,
        { cause: err },
      );
    }
    if (/no such device/i.test(message)) {
      throw new MbprobeError(
        'INTERFACE_NOT_FOUND',
        `No network interface "${opts.iface}" (${message}). Available: ${listInterfaces().join(', ')}`,
        { cause: err },
      );
    }
    if (opts.filter !== '' && /filter|syntax|parse|illegal|unknown|expression|invalid/i.test(message)) {
      throw new MbprobeError('BAD_FILTER', `Capture filter "${opts.filter}" was rejected: ${message}`, { cause: err });
    }
    throw new MbprobeError('CAPTURE_FAILED', `Could not capture on ${opts.iface}: ${message}`, { cause: err });
  }

  const linkType = dltFromCapName(linkName);
  if (linkType === undefined || (requireIpLink && !isSupportedLinkType(linkType))) {
    cap.close();
    throw new MbprobeError(
      'UNSUPPORTED_LINK_TYPE',
      `Interface ${opts.iface} has link type ${linkName}, which mbprobe cannot strip to IP ` +
        '(supported: Ethernet incl. 802.1Q, Linux cooked v1/v2, raw IP, NULL/LOOP)',
    );
  }
  const kernel = KernelStatisticsReader.forNewSocket(socketsBefore, packetSocketDescriptors());
  return { cap, buffer, linkType, kernel };
}

export function openCapture(opts: CaptureOptions): LiveCapture {
  const { cap, buffer, linkType, kernel } = openHandle(opts, true);
  const listeners: Array<(p: CapturedPacket) => void> = [];
  let closed = false;
  const counts = { delivered: 0, queueDropped: 0 };
  let lastKernel: KernelCaptureStatistics | undefined;
  const queueLimit = opts.queue ?? 0;
  let queue: CapturedPacket[] = [];
  let next = 0;
  // A turn of at most DRAIN_SLICE_MS, then libuv polls libpcap's socket again: the ring need only hold
  // what arrives in one slice, not in the whole batch's processing time.
  /** The packet being delivered from the queue, if any (lagUs). */
  let current: CapturedPacket | undefined;
  const drain = (): void => {
    const until = performance.now() + DRAIN_SLICE_MS;
    while (next < queue.length && !closed) {
      const packet = (current = queue[next++]);
      for (const listener of listeners) listener(packet);
      if ((next & 63) === 0 && performance.now() > until) break;
    }
    current = undefined;
    if (next < queue.length && !closed) {
      if (next >= 16_384) {
        queue = queue.slice(next); // under sustained overload the queue never empties: drop what was delivered
        next = 0;
      }
      setImmediate(drain);
      return;
    }
    queue = [];
    next = 0;
  };
  cap.on('packet', (nbytes: number, capTruncated: boolean) => {
    const atUs = nowUs();
    if (closed) return;
    const offset = ipOffset(linkType, buffer, nbytes);
    if (offset === undefined) return; // not IP (ARP, LLDP, ...)
    counts.delivered++;
    if (queueLimit > 0 && queue.length - next >= queueLimit) {
      counts.queueDropped++;
      return;
    }
    const bytes = new Uint8Array(buffer.subarray(offset, nbytes)); // a copy: cap reuses `buffer`
    const packet: CapturedPacket = { bytes, atUs, truncated: capTruncated || ipLooksTruncated(bytes) };
    if (queueLimit === 0) {
      for (const listener of listeners) listener(packet);
      return;
    }
    if (queue.push(packet) === 1) setImmediate(drain);
  });

  const statistics = (): CaptureStatistics => {
    if (!closed) lastKernel = kernel?.read() ?? lastKernel;
    return { ...counts, ...(lastKernel ? { kernel: lastKernel } : {}) };
  };
  return {
    iface: opts.iface,
    linkType,
    statistics,
    lagUs: () => (current ? Math.max(0, nowUs() - current.atUs) : 0),
    lost() {
      const now = statistics();
      return now.queueDropped + (now.kernel?.drops ?? 0);
    },
    onPacket(listener) {
      listeners.push(listener);
    },
    close() {
      if (closed) return;
      lastKernel = kernel?.read() ?? lastKernel;
      closed = true;
      listeners.length = 0;
      queue = [];
      cap.close();
      cap.removeAllListeners('packet');
    },
  };
}

/** Whole link-layer frames as they are on the wire, and a way to put frames on the wire (pcap_sendpacket). */
export interface FrameCapture {
  readonly iface: string;
  readonly linkType: number;
  onFrame(listener: (frame: Uint8Array, atUs: number) => void): void;
  /** Puts one whole frame (link header included) on the interface's wire. */
  inject(frame: Uint8Array): void;
  close(): void;
}

/** A capture of whole frames (nothing stripped) that can also inject frames: what a user-space bridge needs. */
export function openFrameCapture(opts: CaptureOptions): FrameCapture {
  const { cap, buffer, linkType } = openHandle(opts, false);
  const listeners: Array<(frame: Uint8Array, atUs: number) => void> = [];
  let closed = false;
  cap.on('packet', (nbytes: number) => {
    const atUs = nowUs();
    if (closed) return;
    const frame = new Uint8Array(buffer.subarray(0, nbytes)); // a copy: cap reuses `buffer`
    for (const listener of listeners) listener(frame, atUs);
  });
  return {
    iface: opts.iface,
    linkType,
    onFrame(listener) {
      listeners.push(listener);
    },
    inject(frame) {
      if (closed) return;
      const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
      cap.send(b, b.length);
    },
    close() {
      if (closed) return;
      closed = true;
      listeners.length = 0;
      cap.close();
      cap.removeAllListeners('packet');
    },
  };
}

/** The interface whose route reaches `address` (`ip -j route get ADDR`), for --iface defaults. */
export function defaultInterfaceFor(address: string): string {
  return routeTo(address, 'Pass --iface explicitly.').iface;
}
