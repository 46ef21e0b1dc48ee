/**
 * What a scan probes: targets from the command line and from files (one per line, `#` comments, or a
 * CSV top list with a rank column), names resolved to every address (or one family), what must not be
 * probed (an opt-out list, private and reserved ranges). Pure but for resolution, whose lookup is
 * passed in.
 */
import { BlockList, isIP } from 'node:net';
import { responderHost } from '../payloads.js';

/** One line of a target list or one argument: a name or an address, and a port when it names one. */
export interface TargetSpec {
  host: string;
  /** Only this port (HOST:PORT); unset: every port of --ports. */
  port?: number;
  /** Where it was given: 'argument', or 'FILE:LINE'. */
  from: string;
}

/** A target that could not be read, and why. */
export interface RejectedSpec {
  text: string;
  from: string;
  reason: string;
}

/** HOST, HOST:PORT, an IPv6 address, [IPv6]:PORT; undefined with a reason when it is none of them. */
export function parseTargetSpec(text: string, from: string): TargetSpec | RejectedSpec {
  const reject = (reason: string): RejectedSpec => ({ text, from, reason });
  const trimmed = text.trim();
  let host = trimmed;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed) [, host, portText] = bracketed;
  else if (isIP(trimmed) !== 6) {
    const colon = trimmed.lastIndexOf(':');
    if (colon >= 0) [host, portText] = [trimmed.slice(0, colon), trimmed.slice(colon + 1)];
  }
  const port = portText === undefined ? undefined : Number(portText);
  if (portText !== undefined && (!/^\d+$/.test(portText) || port! < 1 || port! > 65535)) return reject(`"${portText}" is not a port (1-65535)`);
  const kind = responderHost(host);
  if (!kind || host.startsWith('[')) return reject('not a host name, an IPv4 address or an IPv6 address (write an IPv6 address with a port as [2001:db8::1]:443)');
  const normalised = kind.kind === 'dns' ? kind.name.toLowerCase() : kind.address;
  return port === undefined ? { host: normalised, from } : { host: normalised, port, from };
}

export const isRejected = (spec: TargetSpec | RejectedSpec): spec is RejectedSpec => 'reason' in spec;

/** Column names that hold the target in a CSV with a header line. */
const HOST_COLUMNS = ['domain', 'host', 'hostname', 'target', 'address', 'site', 'name', 'origin'];

/**
 * A target list: one target per line (`#` starts a comment; blank lines are skipped), or a CSV. A CSV
 * is a top list when its first field is a rank (Tranco, Umbrella: `1,google.com`): the target is the
 * second field; with a header line, the column named domain, host, hostname, target, address, site,
 * name or origin; otherwise the first field. Lines that are not a target are returned as rejected.
 */
export function parseTargetList(text: string, file: string): { targets: TargetSpec[]; rejected: RejectedSpec[] } {
  const targets: TargetSpec[] = [];
  const rejected: RejectedSpec[] = [];
  let column: number | undefined;
  let first = true;
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const from = `${file}:${i + 1}`;
    const fields = line.split(',').map((f) => f.trim().replace(/^"(.*)"$/, '$1'));
    if (first) {
      first = false;
      const header = fields.findIndex((f) => HOST_COLUMNS.includes(f.toLowerCase()));
      if (fields.length > 1 && header >= 0) {
        column = header;
        continue;
      }
    }
    const field = fields.length === 1 ? fields[0] : column !== undefined ? fields[column] : /^\d+$/.test(fields[0]) ? fields[1] : fields[0];
    const spec = parseTargetSpec(field ?? '', from);
    if (isRejected(spec)) rejected.push(spec);
    else targets.push(spec);
  }
  return { targets, rejected };
}

/**
 * `--targets` values: a FILE when it names an existing file (or `-` for standard input), else a
 * HOST[:PORT]. Duplicates (same host and port) are kept once, in the order first given.
 */
export function collectTargets(
  values: readonly string[],
  io: { isFile(path: string): boolean; read(path: string): string },
): { targets: TargetSpec[]; rejected: RejectedSpec[]; files: string[] } {
  const targets: TargetSpec[] = [];
  const rejected: RejectedSpec[] = [];
  const files: string[] = [];
  for (const value of values) {
    if (value === '-' || io.isFile(value)) {
      files.push(value);
      const parsed = parseTargetList(io.read(value), value === '-' ? 'stdin' : value);
      targets.push(...parsed.targets);
      rejected.push(...parsed.rejected);
      continue;
    }
    const spec = parseTargetSpec(value, 'argument');
    if (isRejected(spec)) rejected.push(spec);
    else targets.push(spec);
  }
  const seen = new Set<string>();
  const unique = targets.filter((t) => {
    const key = `${t.host}|${t.port ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { targets: unique, rejected, files };
}

// ---- What must not be probed. ----

/**
 * Address ranges a scan of ordinary servers has no business probing unless told (--allow-private):
 * private, shared, loopback, link-local, documentation, benchmarking, multicast and reserved space
 * (IANA special-purpose registries, RFC 6890). Name first, then the prefixes.
 */
const RESERVED_RANGES: ReadonlyArray<[name: string, prefix: string, bits: number]> = [
  ['"this network" (RFC 791)', '0.0.0.0', 8],
  ['private (RFC 1918)', '10.0.0.0', 8],
  ['shared address space (RFC 6598)', '100.64.0.0', 10],
  ['loopback', '127.0.0.0', 8],
  ['link-local', '169.254.0.0', 16],
  ['private (RFC 1918)', '172.16.0.0', 12],
  ['IETF protocol assignments', '192.0.0.0', 24],
  ['documentation (RFC 5737)', '192.0.2.0', 24],
  ['6to4 relay anycast (deprecated)', '192.88.99.0', 24],
  ['private (RFC 1918)', '192.168.0.0', 16],
  ['benchmarking (RFC 2544)', '198.18.0.0', 15],
  ['documentation (RFC 5737)', '198.51.100.0', 24],
  ['documentation (RFC 5737)', '203.0.113.0', 24],
  ['multicast', '224.0.0.0', 4],
  ['reserved', '240.0.0.0', 4],
  ['unspecified / loopback (IPv6)', '::', 127],
  ['IPv4-mapped', '::ffff:0:0', 96],
  ['discard-only (RFC 6666)', '100::', 64],
  ['IETF protocol assignments (IPv6)', '2001::', 23],
  ['documentation (RFC 3849)', '2001:db8::', 32],
  ['unique local (RFC 4193)', 'fc00::', 7],
  ['link-local (IPv6)', 'fe80::', 10],
  ['multicast (IPv6)', 'ff00::', 8],
];

const familyOf = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

const reservedLists = RESERVED_RANGES.map(([name, prefix, bits]) => {
  const list = new BlockList();
  list.addSubnet(prefix, bits, familyOf(prefix));
  return { name, family: familyOf(prefix), list };
});

/** The reserved range an address is in (its name), or undefined for an ordinary public address. */
export function reservedRange(address: string): string | undefined {
  const family = familyOf(address);
  // Ranges of the address's own family only: BlockList also matches an IPv4 address against ::ffff:0:0/96.
  return reservedLists.find((r) => r.family === family && r.list.check(address, family))?.name;
}

/** An opt-out list: addresses and prefixes (CIDR), names (`example.org`) and whole domains (`*.example.org` or `.example.org`). */
export interface Exclusions {
  addresses: BlockList;
  names: Set<string>;
  domains: string[];
  /** How many entries were read, for the run's record. */
  entries: number;
}

export function emptyExclusions(): Exclusions {
  return { addresses: new BlockList(), names: new Set(), domains: [], entries: 0 };
}

/** Reads an opt-out list into `into` (one entry per line, `#` comments); returns the lines that are none of the accepted forms. */
export function parseExclusions(text: string, file: string, into: Exclusions): RejectedSpec[] {
  const rejected: RejectedSpec[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, '').trim().toLowerCase();
    if (line === '') continue;
    const from = `${file}:${i + 1}`;
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(line);
    if (cidr && isIP(cidr[1]) && Number(cidr[2]) <= (isIP(cidr[1]) === 4 ? 32 : 128)) {
      into.addresses.addSubnet(cidr[1], Number(cidr[2]), familyOf(cidr[1]));
    } else if (isIP(line)) {
      into.addresses.addAddress(line, familyOf(line));
    } else if (/^(\*\.|\.)/.test(line) && responderHost(line.replace(/^\*?\./, ''))?.kind === 'dns') {
      into.domains.push(line.replace(/^\*?\./, ''));
    } else if (responderHost(line)?.kind === 'dns') {
      into.names.add(line.replace(/\.$/, ''));
    } else {
      rejected.push({ text: raw, from, reason: 'not an address, a prefix (CIDR), a name or *.domain' });
      continue;
    }
    into.entries++;
  }
  return rejected;
}

/** Is this name (as given) or this address on the opt-out list? */
export function isExcluded(exclusions: Exclusions, what: { address?: string; name?: string }): boolean {
  const { address, name } = what;
  if (address !== undefined && exclusions.addresses.check(address, familyOf(address))) return true;
  if (name === undefined) return false;
  return exclusions.names.has(name) || exclusions.domains.some((d) => name === d || name.endsWith(`.${d}`));
}

// ---- Resolution. ----

export type Lookup = (name: string) => Promise<Array<{ address: string; family: number }>>;

/** Every address of a target, of one family when asked; a literal address is itself. Errors become an empty list and the reason. */
export async function resolveTarget(spec: TargetSpec, family: 4 | 6 | undefined, lookup: Lookup): Promise<{ addresses: string[]; error?: string }> {
  const literal = isIP(spec.host);
  if (literal) return { addresses: family === undefined || family === literal ? [spec.host] : [] };
  try {
    const found = await lookup(spec.host);
    const addresses = [...new Set(found.filter((a) => family === undefined || a.family === family).map((a) => a.address))];
    return { addresses };
  } catch (error) {
    return { addresses: [], error: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
}
