import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { MbprobeError } from '../wire/errors.js';

/** The kernel's route to one address: the interface it leaves by and, when the kernel names one, the source address. */
export interface Route {
  iface: string;
  source?: string;
}

/**
 * The route the kernel would use to reach `address` (`ip -j route get ADDR`). `hint` ends the error
 * message: what the user can do about a missing route (e.g. "Pass --iface explicitly.").
 */
export function routeTo(address: string, hint = ''): Route {
  const tail = hint ? ` ${hint}` : '';
  if (isIP(address) === 0) throw new MbprobeError('INVALID_ARGUMENT', `"${address}" is not an IPv4 or IPv6 address`);
  let output: string;
  try {
    output = execFileSync('ip', ['-j', 'route', 'get', address], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new MbprobeError('IPROUTE2_NOT_FOUND', `The "ip" command is missing: apt-get install iproute2.${tail}`, { cause: err });
    throw new MbprobeError('NO_ROUTE', `No route to ${address}: ${(e.stderr ?? '').trim() || e.message}.${tail}`, { cause: err });
  }
  let routes: Array<{ dev?: string; prefsrc?: string; type?: string }>;
  try {
    routes = JSON.parse(output) as typeof routes;
  } catch (err) {
    throw new MbprobeError('NO_ROUTE', `Could not read "ip -j route get ${address}" output: ${output.trim()}`, { cause: err });
  }
  const route = routes.find((r) => typeof r.dev === 'string');
  if (!route?.dev) throw new MbprobeError('NO_ROUTE', `No interface routes to ${address} (${routes.map((r) => r.type ?? 'route').join(', ') || 'no route'}).${tail}`);
  return { iface: route.dev, ...(route.prefsrc ? { source: route.prefsrc } : {}) };
}

/** routeTo, for sending from our own address: the source address is required. */
export function sourceRouteTo(address: string): Required<Route> {
  const route = routeTo(address);
  if (!route.source) throw new MbprobeError('NO_ROUTE', `the kernel names no source address for ${address} (no address on ${route.iface}?)`);
  return { iface: route.iface, source: route.source };
}
