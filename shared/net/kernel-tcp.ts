/**
 * Keeping the host's own TCP stack out of the way. The responder and initiator craft segments with
 * raw sockets; the kernel has no socket for those flows and would answer them with RSTs. Capture
 * (AF_PACKET) sees incoming packets before netfilter, so dropping them in prerouting hides them from
 * the kernel's TCP without hiding them from us.
 *
 * The rule bodies are for holdNftTable() with the default `inet` family.
 */
import { isIP } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { MbprobeError } from '../wire/errors.js';

function checkPorts(ports: readonly number[], allowZero = false): number[] {
  for (const p of ports) {
    if (!Number.isInteger(p) || p < (allowZero ? 0 : 1) || p > 65535) {
      throw new MbprobeError('INVALID_ARGUMENT', `"${p}" is not a TCP port (${allowZero ? 0 : 1}-65535)`);
    }
  }
  return [...new Set(ports)];
}

function nftSet(values: readonly (number | string)[]): string {
  return values.length === 1 ? String(values[0]) : `{ ${values.join(', ')} }`;
}

/**
 * nft body: in prerouting at priority raw (before conntrack, after packet capture has seen the
 * packet), drop every TCP segment addressed to one of this host's own addresses (`fib daddr type
 * local`, so forwarded traffic, e.g. to containers, is untouched) on these ports.
 */
export function responderRules(ports: number[]): string {
  const list = checkPorts(ports);
  const rule = list.length > 0 ? `\n    fib daddr type local tcp dport ${nftSet(list)} drop` : '';
  return `  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;${rule}\n  }`;
}

/**
 * nft body: drop incoming TCP segments from these responder addresses and source ports (the replies
 * to our raw probes) addressed to this host, so the kernel never answers them with RSTs.
 */
export function initiatorRules(responderAddresses: string[], ports: number[]): string {
  const list = checkPorts(ports);
  const v4: string[] = [];
  const v6: string[] = [];
  for (const a of new Set(responderAddresses)) {
    const version = isIP(a);
    if (version === 4) v4.push(a);
    else if (version === 6) v6.push(a);
    else throw new MbprobeError('INVALID_ARGUMENT', `"${a}" is not an IPv4 or IPv6 address`);
  }
  const rules: string[] = [];
  if (list.length > 0) {
    if (v4.length > 0) rules.push(`ip saddr ${nftSet(v4)} tcp sport ${nftSet(list)} fib daddr type local drop`);
    if (v6.length > 0) rules.push(`ip6 saddr ${nftSet(v6)} tcp sport ${nftSet(list)} fib daddr type local drop`);
  }
  return `  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;${rules.map((r) => `\n    ${r}`).join('')}\n  }`;
}

export interface ReservedPorts {
  /** The ports held, in request order (a requested 0 replaced by the port the kernel picked). */
  ports: number[];
  release(): void;
}

interface TcpHandle {
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  close(): void;
}
interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  constants: { SOCKET: number; SERVER: number; UV_TCP_IPV6ONLY: number };
}

function tcpWrap(): TcpWrapBinding {
  // Node has no public way to bind() a TCP socket without listen(); its own TCP handle can.
  // (process.binding is deprecated in documentation only, DEP0111; tcp_wrap stays on its allow list.)
  const binding = (process as unknown as { binding?: (name: string) => unknown }).binding;
  if (typeof binding !== 'function') {
    throw new MbprobeError('PORT_RESERVATION_UNSUPPORTED', 'This Node.js version cannot bind a TCP socket without listening');
  }
  return binding.call(process, 'tcp_wrap') as TcpWrapBinding;
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(errno);
  } catch {
    return `errno ${errno}`;
  }
}

function portError(port: number, family: 4 | 6, name: string): MbprobeError {
  if (name === 'EADDRINUSE') {
    return new MbprobeError(
      'PORT_IN_USE',
      `TCP port ${port} (IPv${family}) is already in use by another program. Stop the program that listens on it ` +
        `(see: ss -ltnp 'sport = :${port}') or choose other ports.`,
    );
  }
  if (name === 'EACCES' || name === 'EPERM') {
    return new MbprobeError('NOT_PRIVILEGED', `Binding TCP port ${port} needs root (or CAP_NET_BIND_SERVICE): run as root.`);
  }
  return new MbprobeError('PORT_RESERVATION_FAILED', `Could not reserve TCP port ${port} (IPv${family}): ${name}`);
}

type BindResult = { handle: TcpHandle; port: number } | { error: string };

function bindOne(wrap: TcpWrapBinding, family: 4 | 6, port: number): BindResult {
  const handle = new wrap.TCP(wrap.constants.SOCKET);
  const rc = family === 4 ? handle.bind('0.0.0.0', port) : handle.bind6('::', port, wrap.constants.UV_TCP_IPV6ONLY);
  // libuv reports EADDRINUSE from bind() lazily; getsockname() returns it.
  const name: { port?: number } = {};
  const err = rc !== 0 ? rc : handle.getsockname(name);
  if (err !== 0 || name.port === undefined) {
    handle.close();
    return { error: err !== 0 ? errnoName(err) : 'EINVAL' };
  }
  return { handle, port: name.port };
}

const IPV6_UNAVAILABLE = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT']);

/**
 * Binds (does not listen) a TCP socket on each port, on the wildcard address, so the kernel never
 * hands these ports to other connections while we run and a server that is already listening on one
 * is reported (PORT_IN_USE). `family` 4 or 6 reserves that family only (IPv6 sockets are v6-only);
 * omitted, both are reserved (IPv6 skipped on hosts without IPv6), with the same port in both.
 *
 * Limits: libuv binds with SO_REUSEADDR, so a later program that also sets SO_REUSEADDR can still
 * bind and even listen on a reserved port (programs without it get EADDRINUSE). The firewall rules
 * above keep such a server from ever seeing a test segment. The kernel's ephemeral port choice for
 * outgoing connections skips the reserved ports.
 */
export async function reservePorts(ports: number[], family?: 4 | 6): Promise<ReservedPorts> {
  checkPorts(ports, true);
  const fixed = ports.filter((p) => p !== 0);
  const twice = fixed.find((p, i) => fixed.indexOf(p) !== i);
  if (twice !== undefined) throw new MbprobeError('INVALID_ARGUMENT', `Port ${twice} is listed twice`);
  const wrap = tcpWrap();
  const handles: TcpHandle[] = [];
  const releaseAll = (): void => {
    for (const h of handles.splice(0)) h.close();
  };
  const chosen: number[] = [];
  try {
    for (const requested of ports) {
      if (family !== undefined) {
        const r = bindOne(wrap, family, requested);
        if ('error' in r) throw portError(requested, family, r.error);
        handles.push(r.handle);
        chosen.push(r.port);
        continue;
      }
      // Both families, same port number in each. A kernel-picked IPv4 port may be taken in IPv6: retry.
      for (let attempt = 1; ; attempt++) {
        const v4 = bindOne(wrap, 4, requested);
        if ('error' in v4) throw portError(requested, 4, v4.error);
        const v6 = bindOne(wrap, 6, v4.port);
        if ('error' in v6 && !IPV6_UNAVAILABLE.has(v6.error)) {
          v4.handle.close();
          if (requested === 0 && v6.error === 'EADDRINUSE' && attempt < 20) continue;
          throw portError(v4.port, 6, v6.error);
        }
        handles.push(v4.handle);
        if ('handle' in v6) handles.push(v6.handle);
        chosen.push(v4.port);
        break;
      }
    }
  } catch (err) {
    releaseAll();
    throw err;
  }
  if (new Set(chosen).size !== chosen.length) {
    releaseAll();
    throw new MbprobeError('PORT_RESERVATION_FAILED', `The kernel handed out the same port twice: ${chosen.join(', ')}`);
  }
  return { ports: chosen, release: releaseAll };
}
