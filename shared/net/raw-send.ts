/**
 * Sending whole, hand-made IP packets with `raw-socket`.
 *
 * IPv4: socket(AF_INET, SOCK_RAW, IPPROTO_RAW), which implies IP_HDRINCL. Per raw(7) the kernel
 * still rewrites, on every packet: the IPv4 header checksum (always), the total length (always),
 * the source address (only when 0.0.0.0) and the identification (only when 0 and DF is clear).
 * Everything else, the TCP header, options, checksum and payload included, leaves as written.
 *
 * IPv6: socket(AF_INET6, SOCK_RAW, IPPROTO_RAW) plus IPV6_HDRINCL (36 at IPPROTO_IPV6; raw-socket
 * only exports that constant on Windows). Linux >= 4.5 already turns it on for IPPROTO_RAW, setting
 * it is belt and braces. The whole packet goes out as written: traffic class, flow label, hop limit,
 * extension headers and even a wrong payload length are untouched (unlike IPv4's total length);
 * verified on the wire by test/integration/net-shell.test.ts.
 *
 * Both: the destination for routing is read from the packet's own header.
 */
import { ipv4ToString, ipv6ToString } from '../wire/address.js';
import { MbprobeError } from '../wire/errors.js';
import { requireNative } from './native-module.js';

export interface PacketSink {
  send(packet: Uint8Array): Promise<void>;
  close(): void;
}

export interface RawSenderOptions {
  family: 4 | 6;
  /** SO_MARK for every packet, so firewall rules (`meta mark`) can tell ours from the kernel's. */
  mark?: number;
}

const IPPROTO_RAW = 255;
const IPPROTO_IPV6 = 41;
const IPV6_HDRINCL = 36;
const SOL_SOCKET = 1;
const SO_MARK = 36;

type RawSocketModule = typeof import('raw-socket');

const loadRawSocket = (): RawSocketModule => requireNative<RawSocketModule>('raw-socket', 'raw socket', 'Run npm rebuild raw-socket.');

function isPermissionError(message: string): boolean {
  return /not permitted|permission|EPERM|EACCES/i.test(message);
}

/** The destination address written in an IP packet, checked against the sender's family. */
export function destinationOf(packet: Uint8Array, family: 4 | 6): string {
  const version = packet.length > 0 ? packet[0] >>> 4 : -1;
  if (version !== family) {
    throw new MbprobeError('BAD_PACKET', `An IPv${family} raw sender cannot send a packet whose IP version is ${version}`);
  }
  if (family === 4) {
    if (packet.length < 20) throw new MbprobeError('BAD_PACKET', `IPv4 packet of ${packet.length} bytes is shorter than an IPv4 header`);
    return ipv4ToString(packet, 16);
  }
  if (packet.length < 40) throw new MbprobeError('BAD_PACKET', `IPv6 packet of ${packet.length} bytes is shorter than an IPv6 header`);
  return ipv6ToString(packet, 24);
}

interface NativeSend {
  send(buffer: Buffer, offset: number, length: number, address: string, done: (bytes: number) => void): void;
}

/** A send waiting in raw-socket's queue (its own request objects). */
interface QueuedSend {
  buffer: Buffer;
  offset: number;
  length: number;
  address: string;
  afterCallback: (error: Error | null, bytes: number) => void;
  beforeCallback?: (() => void) | null;
}

/** Packets waiting for a full socket buffer at most; beyond, a send fails at once (memory stays bounded under overload). */
const MAX_QUEUED = 1024;

const isBufferFull = (error: unknown): boolean => /temporarily unavailable|no buffer space/i.test((error as Error).message);

/**
 * Writes what waits in raw-socket's queue, in order, until the socket's buffer is full again:
 * raw-socket itself writes one queued packet per event-loop turn, far too few under load.
 */
function flushQueuedFrom(wrap: NativeSend, requests: QueuedSend[]): void {
  while (requests.length > 0) {
    const req = requests[0];
    try {
      req.beforeCallback?.();
      wrap.send(req.buffer, req.offset, req.length, req.address, (bytes) => {
        requests.shift();
        req.afterCallback(null, bytes);
      });
    } catch (error) {
      if (isBufferFull(error)) return;
      requests.shift();
      req.afterCallback(error as Error, 0);
    }
  }
}

export function openRawSender(opts: RawSenderOptions): PacketSink {
  const raw = loadRawSocket();
  const family = opts.family;
  if (family !== 4 && family !== 6) throw new MbprobeError('INVALID_ARGUMENT', `family must be 4 or 6, got ${String(family)}`);
  if (opts.mark !== undefined && (!Number.isInteger(opts.mark) || opts.mark < 0 || opts.mark > 0xffffffff)) {
    throw new MbprobeError('INVALID_ARGUMENT', `mark must be a 32-bit unsigned integer, got ${opts.mark}`);
  }

  let socket: import('raw-socket').Socket;
  try {
    socket = raw.createSocket({
      addressFamily: family === 4 ? raw.AddressFamily.IPv4 : raw.AddressFamily.IPv6,
      protocol: IPPROTO_RAW,
    });
  } catch (err) {
    const message = (err as Error).message;
    if (isPermissionError(message)) {
      throw new MbprobeError('NOT_PRIVILEGED', `Sending raw IP packets needs root (or CAP_NET_RAW): run as root, e.g. with sudo. (${message})`, { cause: err });
    }
    throw new MbprobeError('RAW_SOCKET_FAILED', `Could not open a raw IPv${family} socket: ${message}`, { cause: err });
  }

  // raw-socket's internals: its native handle (synchronous sendto) and its queue of pending sends.
  const queued = socket as unknown as { wrap?: NativeSend; requests: QueuedSend[] };
  const wrap = typeof queued.wrap?.send === 'function' && Array.isArray(queued.requests) ? queued.wrap : undefined;
  const flushQueued = (native: NativeSend): void => flushQueuedFrom(native, queued.requests);
  let failure: Error | undefined;
  let closed = false;
  /** Rejecters of sends still queued inside raw-socket, failed on close() (their callbacks would never run). */
  const pending = new Set<(err: Error) => void>();
  // An IPPROTO_RAW socket never receives; stop watching it for reads so an idle sink does not keep
  // the process alive (raw-socket resumes the write watcher by itself while sends are queued).
  socket.pauseRecv();
  socket.on('error', (err: Error) => {
    failure = err;
  });

  try {
    if (family === 6) socket.setOption(IPPROTO_IPV6, IPV6_HDRINCL, 1);
    if (opts.mark !== undefined) socket.setOption(SOL_SOCKET, SO_MARK, opts.mark);
  } catch (err) {
    socket.close();
    const message = (err as Error).message;
    if (isPermissionError(message)) {
      throw new MbprobeError('NOT_PRIVILEGED', `Setting SO_MARK needs root (CAP_NET_ADMIN): run as root. (${message})`, { cause: err });
    }
    throw new MbprobeError('RAW_SOCKET_FAILED', `Could not configure the raw IPv${family} socket: ${message}`, { cause: err });
  }

  return {
    send(packet: Uint8Array): Promise<void> {
      if (closed) return Promise.reject(new MbprobeError('SEND_FAILED', 'The raw sender is closed'));
      if (failure) return Promise.reject(new MbprobeError('SEND_FAILED', `The raw socket failed: ${failure.message}`, { cause: failure }));
      let destination: string;
      try {
        destination = destinationOf(packet, family);
      } catch (err) {
        return Promise.reject(err);
      }
      // At once when nothing is queued: raw-socket's own send() writes one queued packet per event-loop
      // turn, so a responder answering tens of thousands of segments per second fell behind without
      // bound. Its native send (sendto on the non-blocking socket) is what that queue calls too.
      if (wrap) flushQueued(wrap);
      if (wrap && queued.requests.length === 0) {
        try {
          let written = -1;
          wrap.send(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength), 0, packet.byteLength, destination, (bytes: number) => void (written = bytes));
          if (written === packet.byteLength) return Promise.resolve();
          return Promise.reject(new MbprobeError('SEND_FAILED', `Only ${written} of ${packet.byteLength} bytes to ${destination} were sent`));
        } catch (err) {
          // A full socket buffer: wait in raw-socket's queue for the socket to be writable; anything else fails.
          if (!isBufferFull(err)) {
            return Promise.reject(new MbprobeError('SEND_FAILED', `Sending ${packet.byteLength} bytes to ${destination} failed: ${(err as Error).message}`, { cause: err }));
          }
        }
      }
      if (queued.requests.length >= MAX_QUEUED) {
        return Promise.reject(new MbprobeError('SEND_FAILED', `Sending ${packet.byteLength} bytes to ${destination} failed: ${queued.requests.length} packets already wait for the raw socket's buffer`));
      }
      // Copy: the write happens later (when the socket is writable) and callers may reuse their array.
      const buffer = Buffer.from(packet);
      return new Promise<void>((resolve, reject) => {
        pending.add(reject);
        socket.send(buffer, 0, buffer.length, destination, (error, bytes) => {
          pending.delete(reject);
          if (error) {
            reject(new MbprobeError('SEND_FAILED', `Sending ${buffer.length} bytes to ${destination} failed: ${error.message}`, { cause: error }));
          } else if (bytes !== buffer.length) {
            reject(new MbprobeError('SEND_FAILED', `Only ${bytes} of ${buffer.length} bytes to ${destination} were sent`));
          } else {
            resolve();
          }
        });
      });
    },
    close() {
      if (closed) return;
      closed = true;
      socket.close();
      for (const reject of pending) reject(new MbprobeError('SEND_FAILED', 'The raw sender was closed before the packet was sent'));
      pending.clear();
    },
  };
}
