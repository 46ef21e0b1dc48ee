/**
 * What a lab profile is, and the small helpers every profile family uses. A profile configures the
 * middlebox namespace of a lab path (lab/topology.ts) to behave like one kind of deployed box; one
 * module per family in lab/profiles/, registered in lab/profiles/index.ts.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MbprobeError, type ErrorCode } from '../shared/wire/errors.js';
import { TEST_PORTS } from '../shared/ports.js';
import type { Lab } from './topology.js';

export interface LabProfile {
  name: string;
  description: string;
  /** commands run inside the middlebox namespace after the path is up */
  setup(lab: Lab): string[][];
  /** long-running programs on the middlebox (e.g. a relay), started after setup */
  daemons?(lab: Lab): string[][];
  /** TCP ports the daemons listen on in the middlebox; createLab waits until each is listening for the given families */
  listens?(lab: Lab): Array<{ port: number; family: 4 | 6 }>;
  /** a line every daemon prints on stdout once it works (e.g. its captures are open); createLab waits for it */
  readyLine?: string;
  /** files written before setup runs (configuration of real middlebox software), path -> content */
  files?(lab: Lab): Record<string, string>;
  /** Debian packages the profile's software comes from (scripts/setup installs them; createLab says which is missing) */
  packages?: readonly string[];
  /** programs that must exist for the profile to be built */
  needs?: readonly string[];
  /** The initiator names the responder by a name only its own resolver knows (lab.responderNames), not by address. */
  responderByName?: boolean;
}

/** Errors of the lab, with stable codes (ECOMMAND, ETIMEDOUT, EPROFILE, ...) and the failing command's stderr. */
export class LabError extends MbprobeError {
  stderr?: string;
  argv?: string[];
  exitCode?: number;
  constructor(code: ErrorCode, message: string, extra: { stderr?: string; argv?: string[]; exitCode?: number } = {}) {
    super(code, message);
    this.name = 'LabError';
    if (extra.stderr !== undefined) this.stderr = extra.stderr;
    if (extra.argv !== undefined) this.argv = extra.argv;
    if (extra.exitCode !== undefined) this.exitCode = extra.exitCode;
  }
}

/** TCP ports the profiles treat as "under test": the responder's test ports */
export const LAB_PORTS: readonly number[] = TEST_PORTS;
/** nftables table / iptables chain name used by every profile */
export const NFT_TABLE = 'mbprobe';
export const IPT_CHAIN = 'MBPROBE';

export const portList = (): string => LAB_PORTS.join(',');

/** `nft` invocation applying a newline separated script (one argv element) */
export function nft(lines: string[]): string[] {
  return ['nft', lines.join('\n')];
}

/** iptables+ip6tables commands creating chain MBPROBE in `table`, jumped to from `hook` */
export function iptChain(table: string, hook: string, rules: string[][], jumpMatch: string[] = []): string[][] {
  const out: string[][] = [];
  for (const bin of ['iptables', 'ip6tables']) {
    out.push([bin, '-w', '-t', table, '-N', IPT_CHAIN]);
    for (const r of rules) out.push([bin, '-w', '-t', table, '-A', IPT_CHAIN, ...r]);
    out.push([bin, '-w', '-t', table, '-A', hook, ...jumpMatch, '-j', IPT_CHAIN]);
  }
  return out;
}

/** The project root, whether this module runs from lab/ (vitest) or dist/lab/ (compiled). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new LabError('EBUILD', 'cannot find the mbprobe project root (package.json)');
    dir = parent;
  }
  return dir;
}

/** The compiled daemon `name` (dist/lab/daemons/<name>.js): the middlebox runs it with node. */
export function daemonScript(name: string): string {
  const script = join(projectRoot(), 'dist', 'lab', 'daemons', `${name}.js`);
  if (!existsSync(script)) throw new LabError('EBUILD', `the lab's ${name} daemon is not built (${script} is missing): run npm run build`);
  return script;
}
