/**
 * mbprobe lab: a three-namespace path  initiator — middlebox — responder
 * where the middlebox is a real Linux netfilter box configured per profile.
 *
 *   mbp<id>-ini            mbp<id>-mb                    mbp<id>-rsp
 *   ini0 ──veth── mb-left [nftables/iptables] mb-right ──veth── rsp0
 *   198.18.<id>.2   198.18.<id>.1     198.19.<id>.1   198.19.<id>.2
 *   fd6d:6270:<id>:1::2   …:1::1        …:2::1        fd6d:6270:<id>:2::2
 *
 * All addresses come from the RFC 2544 benchmarking range (IPv4) and a ULA
 * prefix (IPv6) and exist only inside the lab's own namespaces; nothing is
 * created in, or routed to, the host's namespace.
 *
 * With `hops` (createLab, `scripts/lab up --hops`), the path has routers on both sides of the
 * middlebox, every hop a namespace that forwards (lab/hops.ts):
 *
 *   mbp<id>-ini — mbp<id>-h1 — ... — mbp<id>-mb (hop k) — ... — mbp<id>-hN — mbp<id>-rsp
 *
 * the initiator and responder keep their addresses, hop 1's left and hop N's right side take the
 * middlebox's, and the links between hops get addresses of their own.
 *
 * Bookkeeping: /run/mbprobe-lab/<id>.pid holds the creating pid (first line)
 * plus its start time, the profile name and whether the lab is persistent
 * (started by `scripts/lab up`, outlives its creator).  Id allocation and
 * stale-lab removal are serialised across processes with flock(1) on
 * /run/mbprobe-lab/.lock (the lock dies with its holder, so there is never a
 * stale lock).
 */
import { spawn as spawnChild, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promises as fsp, readFileSync, readdirSync, readlinkSync, rmSync, statSync, unlinkSync, existsSync, openSync, closeSync, mkdirSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { daemonScript, LabError, NFT_TABLE, type LabProfile } from './profile.js';
import { PROFILES } from './profiles/index.js';
import { formatWanSpec, parseWanSpec, type WanSpec } from './wan.js';
import { checkHopsSpec, hopRoutes, labHops, parseHopsSpec, type HopsSpec, type LabHop } from './hops.js';

// ---------------------------------------------------------------------------
// Public types

export interface LabAddresses {
  initiator: string;
  responder: string;
  middleboxLeft: string;
  middleboxRight: string;
  initiator6: string;
  responder6: string;
  middleboxLeft6: string;
  middleboxRight6: string;
}

export interface LabExecOptions {
  input?: string;
  timeoutMs?: number;
  allowFailure?: boolean;
}

export interface LabExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Lab {
  /** 0..63, chosen free automatically unless given */
  id: number;
  profile: LabProfile;
  /** `wan`: the WAN emulator's bridge between the initiator and the middlebox, when the lab has one */
  namespaces: { initiator: string; middlebox: string; responder: string; wan?: string };
  /** interface names inside their namespaces (wanLeft/wanRight: the bridge's two ends, in the wan namespace) */
  interfaces: { initiator: string; middleboxLeft: string; middleboxRight: string; responder: string; wanLeft: string; wanRight: string };
  addresses: LabAddresses;
  /**
   * Names of the responder that resolve only in the initiator's namespace (its /etc/hosts, bind-mounted
   * by `ip netns exec`): what a volunteer types as --responder. The middlebox cannot resolve them.
   */
  responderNames: { 4: string; 6: string };
  /** The WAN emulator's settings when the initiator's access link has one (createLab's `wan`). */
  wan?: WanSpec;
  /** A multi-hop path (createLab's `hops`): its settings, and every hop (the middlebox among them) in path order. */
  hops?: HopsSpec;
  path?: readonly LabHop[];
  /** A directory of this lab's own (configuration files of middlebox software, logs), removed with the lab. */
  runDir: string;
  /** true for labs created with `keep` (scripts/lab up): they outlive their creator */
  persistent: boolean;
  /**
   * Run `ip netns exec <ns> ...argv` and collect its output.  `ns` is one of
   * the lab's namespace names, or a role: 'initiator' | 'middlebox' |
   * 'responder'.  Throws LabError (code 'ECOMMAND', with stderr) on a non-zero
   * exit and LabError 'ETIMEDOUT' on timeout (the process is SIGKILLed),
   * unless allowFailure is set, in which case the exit code is returned
   * (124 on timeout, 128+signal when killed by a signal).
   */
  exec(ns: string, argv: string[], opts?: LabExecOptions): Promise<LabExecResult>;
  /** runs `ip netns exec ns ...argv`; the process is killed by destroy() */
  spawn(ns: string, argv: string[], opts?: SpawnOptions): ChildProcess;
  /** idempotent; kills spawned processes (and anything else left in the namespaces), deletes the namespaces */
  destroy(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Constants and naming

const OFFLOADS = ['tso', 'gso', 'gro', 'lro', 'tx', 'rx', 'sg'];

export const MAX_LAB_ID = 63;
export const LAB_RUN_DIR = '/run/mbprobe-lab';
const LOCK_PATH = `${LAB_RUN_DIR}/.lock`;
const NETNS_DIR = '/run/netns';
const NS_NAME_RE = /^mbp(\d{1,2})-(ini|mb|rsp|wan|h\d{1,2})$/;

export const LAB_INTERFACES = Object.freeze({
  initiator: 'ini0',
  middleboxLeft: 'mb-left',
  middleboxRight: 'mb-right',
  responder: 'rsp0',
  wanLeft: 'wan-l',
  wanRight: 'wan-r',
});

export function labNamespaces(id: number, withWan = false): Lab['namespaces'] {
  return { initiator: `mbp${id}-ini`, middlebox: `mbp${id}-mb`, responder: `mbp${id}-rsp`, ...(withWan ? { wan: `mbp${id}-wan` } : {}) };
}

/** The responder's names for lab `id` (RFC 6761 .test: no real resolver answers them). */
export function labResponderNames(id: number): Lab['responderNames'] {
  return { 4: `responder4.lab${id}.mbprobe.test`, 6: `responder6.lab${id}.mbprobe.test` };
}

/** Per-namespace /etc overrides: `ip netns exec NS` bind-mounts /etc/netns/NS/* over /etc. */
const NETNS_ETC = '/etc/netns';
const runDirOf = (id: number): string => `${LAB_RUN_DIR}/${id}`;

export function labAddresses(id: number): LabAddresses {
  // the id is written with decimal digits in the third IPv6 group as well
  // (lab 12 -> fd6d:6270:12::/48), which keeps v4 and v6 visually aligned
  return {
    initiator: `198.18.${id}.2`,
    middleboxLeft: `198.18.${id}.1`,
    middleboxRight: `198.19.${id}.1`,
    responder: `198.19.${id}.2`,
    initiator6: `fd6d:6270:${id}:1::2`,
    middleboxLeft6: `fd6d:6270:${id}:1::1`,
    middleboxRight6: `fd6d:6270:${id}:2::1`,
    responder6: `fd6d:6270:${id}:2::2`,
  };
}

// ---------------------------------------------------------------------------
// Small process helpers

interface RunOptions {
  input?: string;
  timeoutMs?: number;
  allowFailure?: boolean;
}

const shq = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const cmdText = (argv: string[]): string => argv.map(shq).join(' ');

function signalExitCode(signal: NodeJS.Signals | null): number {
  if (!signal) return 1;
  const n = (osConstants.signals as Record<string, number>)[signal];
  return 128 + (n ?? 0);
}

/** spawn argv (host namespace, or wrapped by the caller), collect output */
function collect(child: ChildProcess, argv: string[], opts: RunOptions): Promise<LabExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs);
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new LabError('ESPAWN', `cannot run ${cmdText(argv)}: ${e.message}`, { argv }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      const rc = timedOut ? 124 : code ?? signalExitCode(signal);
      if (rc !== 0 && !opts.allowFailure) {
        const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exited with ${rc}`;
        reject(
          new LabError(timedOut ? 'ETIMEDOUT' : 'ECOMMAND', `${cmdText(argv)} ${why}${stderr ? `: ${stderr.trim()}` : ''}`, {
            stderr,
            argv,
            exitCode: rc,
          }),
        );
        return;
      }
      resolve({ stdout, stderr, code: rc });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {
        /* the process may exit without reading its input */
      });
      child.stdin.end(opts.input ?? '');
    }
  });
}

/** run a command in the host namespace (only ever iproute2 / flock / ss style management commands) */
function run(argv: string[], opts: RunOptions = {}): Promise<LabExecResult> {
  const child = spawnChild(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  return collect(child, argv, opts);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Bookkeeping: pid files, lock, stale labs

interface PidInfo {
  id: number;
  pid: number;
  start?: string;
  profile?: string;
  persistent: boolean;
}

const pidPath = (id: number) => `${LAB_RUN_DIR}/${id}.pid`;
const logPath = (id: number) => `${LAB_RUN_DIR}/${id}.log`;

/** start time (clock ticks since boot) of a process, undefined if it does not exist */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function readPidFile(id: number): PidInfo | undefined {
  let text: string;
  try {
    text = readFileSync(pidPath(id), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const info: PidInfo = { id, pid: Number.isFinite(pid) ? pid : -1, persistent: false };
  for (const line of lines.slice(1)) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (k === 'start') info.start = v;
    else if (k === 'profile') info.profile = v;
    else if (k === 'persistent') info.persistent = v === '1';
  }
  return info;
}

function ownerAlive(info: PidInfo): boolean {
  if (info.persistent) return true;
  if (info.pid <= 0) return false;
  const start = processStart(info.pid);
  if (start === undefined) return false;
  return info.start === undefined || info.start === start;
}

function pidFileIds(): number[] {
  let names: string[];
  try {
    names = readdirSync(LAB_RUN_DIR);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = /^(\d{1,2})\.pid$/.exec(n);
    return m ? [Number(m[1])] : [];
  });
}

/** lab namespaces present in /run/netns, grouped by id */
function labNamespaceNames(): Map<number, string[]> {
  const byId = new Map<number, string[]>();
  let names: string[] = [];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    /* no namespaces at all */
  }
  for (const n of names) {
    const m = NS_NAME_RE.exec(n);
    if (!m) continue;
    const id = Number(m[1]);
    if (id > MAX_LAB_ID) continue;
    byId.set(id, [...(byId.get(id) ?? []), n]);
  }
  return byId;
}

/** pids of all processes whose network namespace is one of `names` (never our own) */
function namespacePids(names: string[]): number[] {
  const inodes = new Set<number>();
  for (const n of names) {
    try {
      inodes.add(statSync(`${NETNS_DIR}/${n}`).ino);
    } catch {
      /* gone already */
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/ns/net`));
      if (m && inodes.has(Number(m[1]))) pids.push(pid);
    } catch {
      /* exited, or a kernel thread */
    }
  }
  return pids;
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

const netnsDelBatch = (names: string[]) => names.map((n) => `netns del ${n}\n`).join('');

/** kill whatever runs in the namespaces, then delete them */
async function teardownNamespaces(names: string[]): Promise<void> {
  for (const n of names) rmQuiet(`${NETNS_ETC}/${n}`);
  const present = names.filter((n) => existsSync(`${NETNS_DIR}/${n}`));
  if (present.length === 0) return;
  killPids(namespacePids(present));
  await run(['ip', '-force', '-batch', '-'], { input: netnsDelBatch(present), allowFailure: true });
}

function teardownNamespacesSync(names: string[]): void {
  for (const n of names) rmQuiet(`${NETNS_ETC}/${n}`);
  const present = names.filter((n) => existsSync(`${NETNS_DIR}/${n}`));
  if (present.length === 0) return;
  killPids(namespacePids(present));
  try {
    execFileSync('ip', ['-force', '-batch', '-'], { input: netnsDelBatch(present), stdio: ['pipe', 'ignore', 'ignore'] });
  } catch {
    /* best effort at exit */
  }
}

function rmQuiet(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    /* not there */
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}

/**
 * Hold an exclusive flock(1) on LOCK_PATH while fn runs.  The lock belongs to
 * a helper process that exits as soon as its stdin closes, so the lock is
 * released also when this process dies.
 */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  await fsp.mkdir(LAB_RUN_DIR, { recursive: true });
  const argv = ['flock', '-x', '-w', '30', LOCK_PATH, 'sh', '-c', 'echo locked; exec cat >/dev/null'];
  const helper = spawnChild(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => helper.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    let done = false;
    helper.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    helper.stdout?.on('data', (d: Buffer) => {
      if (!done && d.toString().includes('locked')) {
        done = true;
        resolve();
      }
    });
    helper.once('error', (e) => {
      done = true;
      reject(new LabError('ELOCK', `cannot run flock: ${e.message}`));
    });
    helper.once('close', (code) => {
      if (!done) reject(new LabError('ELOCK', `cannot lock ${LOCK_PATH} (flock exited ${code}) ${stderr.trim()}`, { stderr }));
    });
  });
  try {
    return await fn();
  } finally {
    helper.stdin?.end();
    await exited;
  }
}

/** under the lock: remove labs whose creator is dead and lab namespaces that have no pid file */
async function reapStaleLocked(): Promise<string[]> {
  const removed: string[] = [];
  const byId = labNamespaceNames();
  const ids = new Set<number>([...pidFileIds(), ...byId.keys()]);
  for (const id of [...ids].sort((a, b) => a - b)) {
    const info = readPidFile(id);
    if (info && ownerAlive(info)) continue;
    const names = byId.get(id) ?? [];
    await teardownNamespaces(names);
    removed.push(...names);
    unlinkQuiet(pidPath(id));
    unlinkQuiet(logPath(id));
    rmQuiet(runDirOf(id));
  }
  return removed;
}

/**
 * Delete mbprobe lab namespaces whose creating process is dead (or that have
 * no pid file at all), killing any process still running in them.  Labs made
 * persistent by `scripts/lab up` are left alone.  Returns the deleted
 * namespace names.
 */
export async function removeStaleLabs(): Promise<string[]> {
  requireRoot();
  return withLock(reapStaleLocked);
}

export interface LabInfo {
  id: number;
  profile?: string;
  pid?: number;
  persistent: boolean;
  /** 'persistent' | 'in-use' | 'stale' */
  state: 'persistent' | 'in-use' | 'stale';
  namespaces: string[];
}

/** labs currently present (pid files and/or namespaces) */
export function listLabs(): LabInfo[] {
  const byId = labNamespaceNames();
  const ids = new Set<number>([...pidFileIds(), ...byId.keys()]);
  return [...ids]
    .sort((a, b) => a - b)
    .map((id) => {
      const info = readPidFile(id);
      const state: LabInfo['state'] = !info || !ownerAlive(info) ? 'stale' : info.persistent ? 'persistent' : 'in-use';
      const li: LabInfo = { id, persistent: info?.persistent ?? false, state, namespaces: (byId.get(id) ?? []).sort() };
      if (info?.profile) li.profile = info.profile;
      if (info && info.pid > 0) li.pid = info.pid;
      return li;
    });
}

/**
 * Tear down lab `id` regardless of who created it (scripts/lab down): kills
 * every process in its namespaces, deletes them and its pid file.  Returns the
 * deleted namespace names.
 */
export async function destroyLabById(id: number): Promise<string[]> {
  requireRoot();
  checkId(id);
  return withLock(async () => {
    const names = labNamespaceNames().get(id) ?? [];
    await teardownNamespaces(names);
    unlinkQuiet(pidPath(id));
    unlinkQuiet(logPath(id));
    rmQuiet(runDirOf(id));
    return names;
  });
}

// ---------------------------------------------------------------------------
// Live labs of this process (cleaned up synchronously at exit)

const liveLabs = new Set<LabImpl>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new LabError('EPERM', 'the mbprobe lab needs root (network namespaces, netfilter)');
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_LAB_ID) throw new LabError('EINVAL', `lab id must be an integer 0..${MAX_LAB_ID}, got ${id}`);
}

// ---------------------------------------------------------------------------
// Shell snippets that configure a namespace

/** The nftables table and packet mark of hops whose ICMP errors the quoter daemon sends. */
export const QUOTER_TABLE = 'mbprobe_quoter';
export const QUOTER_MARK = 0x6d62;

const sys = (path: string, value: string) => `echo ${value} > /proc/sys/${path}`;
const noDad = (devs: string[]) => [
  sys('net/ipv6/conf/all/accept_dad', '0'),
  sys('net/ipv6/conf/default/accept_dad', '0'),
  ...devs.map((d) => sys(`net/ipv6/conf/${d}/accept_dad`, '0')),
];
const offload = (dev: string) => `ethtool -K ${dev} ${OFFLOADS.map((f) => `${f} off`).join(' ')} >/dev/null 2>&1 || true`;
const ipBatch = (lines: string[]) => `ip -batch - <<'EOF'\n${lines.join('\n')}\nEOF`;
const nftScript = (lines: string[]) => `nft -f - <<'EOF'\n${lines.join('\n')}\nEOF`;
/** An end host: one interface, its addresses, default routes via the gateway. */
const hostScript = (dev: string, v4: string, v6: string, gw4: string, gw6: string) =>
  [
    'set -e',
    ...noDad([dev]),
    sys(`net/ipv6/conf/${dev}/router_solicitations`, '0'),
    offload(dev),
    ipBatch([
      'link set lo up',
      `addr add ${v4}/24 dev ${dev}`,
      `addr add ${v6}/64 dev ${dev} nodad`,
      `link set ${dev} up`,
      `route add default via ${gw4} dev ${dev}`,
      `route add default via ${gw6} dev ${dev}`,
    ]),
  ].join('\n');
/** The bridge's ends carry no address and stay silent (no IPv6 of their own): only what it forwards crosses. */
const wanScript = (ifs: Lab['interfaces']) => [
  'set -e',
  ...[ifs.wanLeft, ifs.wanRight].map((d) => sys(`net/ipv6/conf/${d}/disable_ipv6`, '1')),
  offload(ifs.wanLeft),
  offload(ifs.wanRight),
  ipBatch(['link set lo up', ...[ifs.wanLeft, ifs.wanRight].flatMap((d) => [`link set ${d} promisc on`, `link set ${d} up`])]),
].join('\n');
const inNs = (name: string, script: string) => run(['ip', 'netns', 'exec', name, 'sh', '-c', script], { timeoutMs: 20_000 });

// ---------------------------------------------------------------------------
// The lab

class LabImpl implements Lab {
  readonly id: number;
  readonly profile: LabProfile;
  readonly namespaces: Lab['namespaces'];
  readonly interfaces: Lab['interfaces'];
  readonly addresses: LabAddresses;
  readonly persistent: boolean;
  readonly responderNames: Lab['responderNames'];
  readonly wan?: WanSpec;
  readonly hops?: HopsSpec;
  readonly path?: readonly LabHop[];
  readonly runDir: string;
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | undefined;
  private destroyed = false;

  constructor(id: number, profile: LabProfile, persistent: boolean, wan: WanSpec | undefined, hops: HopsSpec | undefined) {
    this.id = id;
    this.profile = profile;
    this.persistent = persistent;
    this.namespaces = labNamespaces(id, wan !== undefined);
    this.interfaces = { ...LAB_INTERFACES };
    this.addresses = labAddresses(id);
    this.responderNames = labResponderNames(id);
    if (wan) this.wan = wan;
    if (hops) {
      this.hops = hops;
      this.path = labHops(id, hops, this.namespaces.middlebox, this.interfaces);
      const mb = this.path[hops.middlebox - 1];
      this.addresses = { ...this.addresses, middleboxLeft: mb.left.address, middleboxLeft6: mb.left.address6, middleboxRight: mb.right.address, middleboxRight6: mb.right.address6 };
    }
    this.runDir = runDirOf(id);
    liveLabs.add(this);
  }

  /** Every namespace of the lab: the roles', and the routers of a multi-hop path. */
  allNamespaces(): string[] {
    return [...new Set([...Object.values(this.namespaces), ...(this.path ?? []).map((h) => h.namespace)])];
  }

  /** namespace name for a namespace name or role ('initiator', 'middlebox', 'responder', 'wan', 'h<n>' for hop n) */
  resolveNs(ns: string): string {
    const byRole = (this.namespaces as Record<string, string>)[ns];
    if (byRole) return byRole;
    const hop = /^h(\d{1,2})$/.exec(ns);
    if (hop && this.path?.[Number(hop[1]) - 1]) return this.path[Number(hop[1]) - 1].namespace;
    if (this.allNamespaces().includes(ns)) return ns;
    throw new LabError('EINVAL', `${ns} is not a namespace of lab ${this.id} (${this.allNamespaces().join(', ')})`);
  }

  private alive(): void {
    if (this.destroyed || this.destroying) throw new LabError('EDESTROYED', `lab ${this.id} has been destroyed`);
  }

  private track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  spawn(ns: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    this.alive();
    if (argv.length === 0) throw new LabError('EINVAL', 'spawn needs a command');
    const child = spawnChild('ip', ['netns', 'exec', this.resolveNs(ns), ...argv], opts);
    return this.track(child);
  }

  exec(ns: string, argv: string[], opts: LabExecOptions = {}): Promise<LabExecResult> {
    let full: string[];
    try {
      this.alive();
      if (argv.length === 0) throw new LabError('EINVAL', 'exec needs a command');
      full = ['ip', 'netns', 'exec', this.resolveNs(ns), ...argv];
    } catch (e) {
      return Promise.reject(e);
    }
    const child = this.track(spawnChild(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] }));
    return collect(child, full, opts);
  }

  destroy(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const kids = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    if (kids.length > 0) {
      const gone = Promise.all(kids.map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())))));
      for (const c of kids) c.kill('SIGTERM');
      const t = setTimeout(() => kids.forEach((c) => c.kill('SIGKILL')), 300);
      await gone;
      clearTimeout(t);
    }
    await teardownNamespaces(this.allNamespaces());
    this.releasePidFile();
    rmQuiet(this.runDir);
    this.destroyed = true;
    liveLabs.delete(this);
  }

  /** at process exit: nothing asynchronous can run any more */
  destroySync(): void {
    if (this.destroyed || this.persistent) return;
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    teardownNamespacesSync(this.allNamespaces());
    this.releasePidFile();
    rmQuiet(this.runDir);
    this.destroyed = true;
    liveLabs.delete(this);
  }

  private releasePidFile(): void {
    const info = readPidFile(this.id);
    if (info && (info.pid === process.pid || info.persistent)) {
      unlinkQuiet(pidPath(this.id));
      unlinkQuiet(logPath(this.id));
    }
  }

  // -- construction -------------------------------------------------------

  async build(): Promise<void> {
    if (this.path) return this.buildPath(this.path);
    const ns = this.namespaces;
    const ifs = this.interfaces;
    const a = this.addresses;
    // 1. namespaces and veth pairs, created directly inside the namespaces
    // With a WAN emulator, the initiator's link runs through its bridge: ini0 - wan-l [wan] wan-r - mb-left.
    const initiatorLink = ns.wan
      ? [
          `link add name ${ifs.wanLeft} netns ${ns.wan} type veth peer name ${ifs.initiator} netns ${ns.initiator}`,
          `link add name ${ifs.wanRight} netns ${ns.wan} type veth peer name ${ifs.middleboxLeft} netns ${ns.middlebox}`,
        ]
      : [`link add name ${ifs.middleboxLeft} netns ${ns.middlebox} type veth peer name ${ifs.initiator} netns ${ns.initiator}`];
    await run(['ip', '-batch', '-'], {
      input: [
        `netns add ${ns.initiator}`,
        `netns add ${ns.middlebox}`,
        `netns add ${ns.responder}`,
        ...(ns.wan ? [`netns add ${ns.wan}`] : []),
        ...initiatorLink,
        `link add name ${ifs.middleboxRight} netns ${ns.middlebox} type veth peer name ${ifs.responder} netns ${ns.responder}`,
        '',
      ].join('\n'),
      timeoutMs: 20_000,
    });
    this.writeEtc();
    // 2. per namespace, one shell: sysctls, offloads, addresses, routes
    const mb = [
      'set -e',
      ...noDad([ifs.middleboxLeft, ifs.middleboxRight]),
      sys('net/ipv4/ip_forward', '1'),
      sys('net/ipv6/conf/all/forwarding', '1'),
      offload(ifs.middleboxLeft),
      offload(ifs.middleboxRight),
      ipBatch([
        'link set lo up',
        `addr add ${a.middleboxLeft}/24 dev ${ifs.middleboxLeft}`,
        `addr add ${a.middleboxRight}/24 dev ${ifs.middleboxRight}`,
        `addr add ${a.middleboxLeft6}/64 dev ${ifs.middleboxLeft} nodad`,
        `addr add ${a.middleboxRight6}/64 dev ${ifs.middleboxRight} nodad`,
        `link set ${ifs.middleboxLeft} up`,
        `link set ${ifs.middleboxRight} up`,
      ]),
    ].join('\n');
    await Promise.all([
      inNs(ns.initiator, hostScript(ifs.initiator, a.initiator, a.initiator6, a.middleboxLeft, a.middleboxLeft6)),
      inNs(ns.middlebox, mb),
      inNs(ns.responder, hostScript(ifs.responder, a.responder, a.responder6, a.middleboxRight, a.middleboxRight6)),
      ...(ns.wan ? [inNs(ns.wan, wanScript(ifs))] : []),
    ]);
    await this.configure();
  }

  /** The /etc overrides of the initiator (the responder's names) and the middlebox (no resolver), and the profile's files. */
  private writeEtc(): void {
    const ns = this.namespaces;
    const a = this.addresses;
    // The initiator resolves the responder's lab names; the middlebox resolves nothing (its resolver is
    // a closed local port, so software on it fails at once instead of asking the host's resolver).
    mkdirSync(this.runDir, { recursive: true });
    mkdirSync(`${NETNS_ETC}/${ns.initiator}`, { recursive: true });
    writeFileSync(`${NETNS_ETC}/${ns.initiator}/hosts`,
      `127.0.0.1 localhost\n::1 localhost\n${a.responder} ${this.responderNames[4]}\n${a.responder6} ${this.responderNames[6]}\n`);
    mkdirSync(`${NETNS_ETC}/${ns.middlebox}`, { recursive: true });
    writeFileSync(`${NETNS_ETC}/${ns.middlebox}/hosts`, '127.0.0.1 localhost\n::1 localhost\n');
    writeFileSync(`${NETNS_ETC}/${ns.middlebox}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    for (const [name, content] of Object.entries(this.profile.files?.(this) ?? {})) writeFileSync(join(this.runDir, name), content);
  }

  /** 3. the profile's netfilter configuration, in one shell; 4. daemons: the WAN emulator's bridge, then the profile's own. */
  private async configure(): Promise<void> {
    const ns = this.namespaces;
    const ifs = this.interfaces;
    const setup = this.profile.setup(this);
    if (setup.length > 0) {
      const script = setup
        .map((argv) => {
          const text = cmdText(argv);
          return `${text} || { rc=$?; echo ${shq(`profile ${this.profile.name}: command failed: ${text}`)} >&2; exit $rc; }`;
        })
        .join('\n');
      await inNs(ns.middlebox, script);
    }
    if (ns.wan && this.wan) {
      const bridge = [process.execPath, daemonScript('wan'), '--left', ifs.wanLeft, '--right', ifs.wanRight, '--spec', formatWanSpec(this.wan),
        ...(this.persistent ? [] : ['--exit-on-stdin-end'])];
      await this.startDaemons(ns.wan, [bridge], 'ready', []);
    }
    await this.startDaemons(ns.middlebox, this.profile.daemons?.(this) ?? [], this.profile.readyLine, this.profile.listens?.(this) ?? []);
  }

  /**
   * A multi-hop path (lab/hops.ts): every hop a forwarding namespace with routes to every link, ICMP
   * rate limits off unless asked for the kernel's defaults, the profile on the middlebox's hop, and
   * the quoter daemon on hops that quote short or with MPLS extensions.
   */
  private async buildPath(path: readonly LabHop[]): Promise<void> {
    const ns = this.namespaces;
    const ifs = this.interfaces;
    const a = this.addresses;
    const spec = this.hops!;
    const first = path[0];
    const last = path[path.length - 1];
    const links = [
      ...(ns.wan
        ? [
            `link add name ${ifs.wanLeft} netns ${ns.wan} type veth peer name ${ifs.initiator} netns ${ns.initiator}`,
            `link add name ${ifs.wanRight} netns ${ns.wan} type veth peer name ${first.left.iface} netns ${first.namespace}`,
          ]
        : [`link add name ${first.left.iface} netns ${first.namespace} type veth peer name ${ifs.initiator} netns ${ns.initiator}`]),
      ...path.slice(1).map((hop, i) => `link add name ${path[i].right.iface} netns ${path[i].namespace} type veth peer name ${hop.left.iface} netns ${hop.namespace}`),
      `link add name ${last.right.iface} netns ${last.namespace} type veth peer name ${ifs.responder} netns ${ns.responder}`,
    ];
    await run(['ip', '-batch', '-'], {
      input: [...[ns.initiator, ns.responder, ...(ns.wan ? [ns.wan] : []), ...path.map((h) => h.namespace)].map((n) => `netns add ${n}`), ...links, ''].join('\n'),
      timeoutMs: 20_000,
    });
    this.writeEtc();
    const prefix = (address: string): string => (address.includes(':') ? '64' : address.startsWith(`198.18.${64 + this.id}.`) ? '30' : '24');
    const icmpLimits = spec.icmpRateLimit === 'kernel' ? [] : [
      // Every copy of a probe gets its answer: no per-destination limit, a global one far above what a test sends.
      sys('net/ipv4/icmp_ratelimit', '0'),
      sys('net/ipv4/icmp_msgs_per_sec', '1000000'),
      sys('net/ipv4/icmp_msgs_burst', '1000000'),
      sys('net/ipv6/icmp/ratelimit', '0'),
    ];
    const hopScript = (hop: LabHop): string => [
      'set -e',
      ...noDad([hop.left.iface, hop.right.iface]),
      sys('net/ipv4/ip_forward', '1'),
      sys('net/ipv6/conf/all/forwarding', '1'),
      ...icmpLimits,
      offload(hop.left.iface),
      offload(hop.right.iface),
      ipBatch([
        'link set lo up',
        ...[hop.left, hop.right].flatMap((side) => [
          `addr add ${side.address}/${prefix(side.address)} dev ${side.iface}`,
          `addr add ${side.address6}/64 dev ${side.iface} nodad`,
          `link set ${side.iface} up`,
        ]),
        ...hopRoutes(this.id, path, hop.hop),
      ]),
    ].join('\n');
    await Promise.all([
      inNs(ns.initiator, hostScript(ifs.initiator, a.initiator, a.initiator6, first.left.address, first.left.address6)),
      inNs(ns.responder, hostScript(ifs.responder, a.responder, a.responder6, last.right.address, last.right.address6)),
      ...(ns.wan ? [inNs(ns.wan, wanScript(ifs))] : []),
      ...path.map((hop) => inNs(hop.namespace, hopScript(hop))),
    ]);
    await this.configure();
    // Hops that quote less than Linux: the kernel's own time-exceeded errors dropped, the quoter's (marked) sent instead.
    for (const hop of path.filter((h) => h.shortQuote || h.mpls)) {
      await inNs(hop.namespace, nftScript([
        `add table inet ${QUOTER_TABLE}`,
        `add chain inet ${QUOTER_TABLE} output { type filter hook output priority filter; policy accept; }`,
        `add rule inet ${QUOTER_TABLE} output meta mark != ${QUOTER_MARK} icmp type time-exceeded drop`,
        `add rule inet ${QUOTER_TABLE} output meta mark != ${QUOTER_MARK} icmpv6 type time-exceeded drop`,
      ]));
      const quoter = [process.execPath, daemonScript('quoter'), '--iface', hop.left.iface, '--source4', hop.left.address, '--source6', hop.left.address6,
        '--mark', String(QUOTER_MARK), ...(hop.mpls ? ['--mpls', String(16000 + hop.hop)] : ['--quote-tcp-bytes', '8']), ...(this.persistent ? [] : ['--exit-on-stdin-end'])];
      await this.startDaemons(hop.namespace, [quoter], 'ready', []);
    }
  }

  private async startDaemons(namespace: string, daemons: string[][], readyLine: string | undefined, wanted: Array<{ port: number; family: 4 | 6 }>): Promise<void> {
    if (daemons.length === 0) return;
    const stderr: string[] = [];
    const procs: ChildProcess[] = [];
    /** per daemon: has it printed readyLine (non-persistent labs read stdout, persistent ones the log) */
    const ready: boolean[] = daemons.map(() => readyLine === undefined);
    let logFd: number | undefined;
    let logStart = 0;
    if (this.persistent) {
      logFd = openSync(logPath(this.id), 'a');
      logStart = statSync(logPath(this.id)).size;
    }
    try {
      for (const [i, argv] of daemons.entries()) {
        const child = this.persistent
          ? this.spawn(namespace, argv, { stdio: ['ignore', logFd!, logFd!], detached: true })
          : this.spawn(namespace, argv, { stdio: ['pipe', readyLine ? 'pipe' : 'ignore', 'pipe'] });
        child.stderr?.on('data', (d: Buffer) => {
          stderr.push(d.toString());
          if (stderr.length > 50) stderr.shift();
        });
        let out = '';
        child.stdout?.on('data', (d: Buffer) => {
          if (ready[i]) return;
          out += d.toString();
          ready[i] = out.split('\n').includes(readyLine!);
        });
        if (this.persistent) child.unref();
        procs.push(child);
      }
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      const dead = procs.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead) {
        await sleep(20); // let the stderr pipe drain
        throw new LabError('EDAEMON', `profile ${this.profile.name}: daemon exited (${dead.exitCode ?? dead.signalCode}) ${stderr.join('').trim()}`, {
          stderr: stderr.join(''),
        });
      }
      if (this.persistent && readyLine !== undefined) {
        const log = readFileSync(logPath(this.id)).subarray(logStart).toString();
        const count = log.split('\n').filter((l) => l === readyLine).length;
        ready.fill(true, 0, count);
      }
      const listening = wanted.length === 0 ? new Set<string>() : await listeningPorts(namespace);
      if (ready.every(Boolean) && wanted.every((w) => listening.has(`${w.family}:${w.port}`))) return;
      if (Date.now() > deadline) {
        throw new LabError('EDAEMON', `profile ${this.profile.name}: daemons not ready / listening after 10 s ${stderr.join('').trim()}`, {
          stderr: stderr.join(''),
        });
      }
      await sleep(15);
    }
  }
}

/** "4:<port>" / "6:<port>" for every listening TCP socket in the namespace */
async function listeningPorts(ns: string): Promise<Set<string>> {
  const { stdout } = await run(['ss', '-N', ns, '-H', '-l', '-t', '-n'], { allowFailure: true, timeoutMs: 5000 });
  const set = new Set<string>();
  for (const line of stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    if (!local) continue;
    const i = local.lastIndexOf(':');
    const port = local.slice(i + 1);
    const addr = local.slice(0, i);
    if (addr === '*') {
      set.add(`4:${port}`);
      set.add(`6:${port}`);
    } else if (addr.startsWith('[')) set.add(`6:${port}`);
    else set.add(`4:${port}`);
  }
  return set;
}

// ---------------------------------------------------------------------------
// createLab

export interface CreateLabOptions {
  profile: string | LabProfile;
  id?: number;
  /**
   * Persistent lab (scripts/lab up): not torn down when the creating process
   * exits, never considered stale, daemons run detached.  Remove with
   * destroy(), destroyLabById() or `scripts/lab down`.
   */
  keep?: boolean;
  /**
   * A WAN emulator on the initiator's access link (`delay=50ms,loss=10%,jitter=30ms`, see lab/wan.ts),
   * under whatever the profile does: a user-space bridge in its own namespace, not a hop.
   */
  wan?: string | WanSpec;
  /**
   * A multi-hop path instead of the three namespaces: routers on both sides of the middlebox, every
   * hop a forwarding namespace (`4,middlebox=3,short-quote=2`, see lab/hops.ts). Unset: initiator —
   * middlebox — responder, as always.
   */
  hops?: string | HopsSpec;
}

export function resolveProfile(profile: string | LabProfile): LabProfile {
  if (typeof profile !== 'string') return profile;
  const p = PROFILES[profile];
  if (!p) throw new LabError('EPROFILE', `unknown lab profile ${profile} (known: ${Object.keys(PROFILES).join(', ')})`);
  return p;
}

export async function createLab(opts: CreateLabOptions): Promise<Lab> {
  requireRoot();
  const profile = resolveProfile(opts.profile);
  if (opts.id !== undefined) checkId(opts.id);
  const persistent = opts.keep ?? false;
  const wan = typeof opts.wan === 'string' ? parseWanSpec(opts.wan) : opts.wan;
  const hops = opts.hops === undefined ? undefined : typeof opts.hops === 'string' ? parseHopsSpec(opts.hops) : checkHopsSpec(opts.hops);
  for (const program of profile.needs ?? []) {
    if (!commandExists(program)) {
      throw new LabError('EMISSING', `profile ${profile.name} needs ${program}${profile.packages?.length ? ` (Debian: apt-get install ${profile.packages.join(' ')}; scripts/setup installs it)` : ''}`);
    }
  }
  const id = await withLock(async () => {
    await reapStaleLocked();
    let chosen: number | undefined;
    if (opts.id !== undefined) {
      const info = readPidFile(opts.id);
      if (info || labNamespaceNames().has(opts.id)) {
        throw new LabError('EBUSY', `lab ${opts.id} is in use${info ? ` (pid ${info.pid}${info.persistent ? ', persistent' : ''})` : ''}`);
      }
      chosen = opts.id;
    } else {
      const nsIds = labNamespaceNames();
      const used = new Set(pidFileIds());
      for (let i = 0; i <= MAX_LAB_ID; i++) {
        if (!used.has(i) && !nsIds.has(i)) {
          chosen = i;
          break;
        }
      }
      if (chosen === undefined) throw new LabError('ENOFREE', `all ${MAX_LAB_ID + 1} lab ids are in use`);
    }
    const start = processStart(process.pid) ?? '';
    await fsp.writeFile(pidPath(chosen), `${process.pid}\nstart=${start}\nprofile=${profile.name}\npersistent=${persistent ? 1 : 0}\n`, {
      flag: 'wx',
    });
    return chosen;
  });
  installExitHook();
  const lab = new LabImpl(id, profile, persistent, wan, hops);
  try {
    await lab.build();
  } catch (e) {
    await lab.destroy().catch(() => undefined);
    throw e;
  }
  return lab;
}

/** Is `program` on the PATH (or an existing absolute path)? */
export function commandExists(program: string): boolean {
  if (program.includes('/')) return existsSync(program);
  return [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((dir) => dir && existsSync(join(dir, program)));
}

/** packets/bytes of a named nft counter in the middlebox's `inet mbprobe` table */
export async function nftCounter(lab: Lab, name: string): Promise<{ packets: number; bytes: number }> {
  const { stdout } = await lab.exec(lab.namespaces.middlebox, ['nft', 'list', 'counter', 'inet', NFT_TABLE, name]);
  const m = /packets (\d+) bytes (\d+)/.exec(stdout);
  if (!m) throw new LabError('ECOUNTER', `cannot parse counter ${name}: ${stdout}`);
  return { packets: Number(m[1]), bytes: Number(m[2]) };
}
