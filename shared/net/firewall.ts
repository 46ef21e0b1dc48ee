/**
 * nftables rules that vanish when this process dies, however it dies (SIGKILL included).
 *
 * How: a child `nft -i` reads commands from a pipe. The table is created with `flags owner`, which
 * ties it to the netlink socket of that nft process (Linux >= 5.12). When we die the pipe's write
 * end closes, nft reads EOF and exits, its netlink socket is released and the kernel deletes the
 * table. The child runs in its own session (detached) so a terminal Ctrl-C reaches only us and the
 * table stays until our own shutdown code calls close(). An owned table cannot be changed by any
 * other process, not even `nft delete table`; close() deletes it through the owning nft.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MbprobeError } from '../wire/errors.js';

export type NftFamily = 'inet' | 'ip' | 'ip6' | 'netdev';

export interface HeldRuleset {
  readonly table: string;
  readonly family: NftFamily;
  /** False once the owning nft process has exited (then the kernel has removed the table). */
  readonly alive: boolean;
  /** Deletes the table and ends the owning nft process. Idempotent. */
  close(): Promise<void>;
}

export interface HoldOptions {
  family?: NftFamily;
  /** Run nft inside this named network namespace (`ip netns exec NS nft -i`). */
  netns?: string;
  /** The nft executable (default "nft", looked up on PATH). */
  nftCommand?: string;
  /** How long to wait for nft to load and confirm the table. Default 10 s. */
  timeoutMs?: number;
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const OUTPUT_LIMIT = 64 * 1024;

function nftMissing(command: string, cause?: unknown): MbprobeError {
  return new MbprobeError(
    'NFT_NOT_FOUND',
    `The nftables command "${command}" was not found: install it (apt-get install nftables).`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Splits what nft -i wrote to stderr into the part that belongs to the commands before `firstOwnLine`
 * (an echoed command line of ours whose error block starts one line above it).
 */
export function errorsBefore(stderr: string, ownLines: readonly string[]): string {
  const lines = stderr.split('\n');
  const at = lines.findIndex((l) => ownLines.includes(l));
  if (at < 0) return stderr;
  // nft prints "Error: <reason>" then the offending input line then a caret line.
  const start = at > 0 && /^(Error|Warning)/.test(lines[at - 1]) ? at - 1 : at;
  return lines.slice(0, start).join('\n');
}

/** Whether `text` holds the complete listing of `table family name { ... }`. */
export function hasCompleteListing(text: string, family: NftFamily, table: string): boolean {
  const start = text.indexOf(`table ${family} ${table} {`);
  if (start < 0) return false;
  return /^}$/m.test(text.slice(start));
}

export async function holdNftTable(table: string, body: string, opts: HoldOptions = {}): Promise<HeldRuleset> {
  const family = opts.family ?? 'inet';
  const nft = opts.nftCommand ?? 'nft';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!NAME.test(table)) {
    throw new MbprobeError('INVALID_ARGUMENT', `nftables table name "${table}" must be a letter followed by up to 63 letters, digits, "_" or "-"`);
  }
  if (!['inet', 'ip', 'ip6', 'netdev'].includes(family)) {
    throw new MbprobeError('INVALID_ARGUMENT', `nftables family must be inet, ip, ip6 or netdev, got "${String(family)}"`);
  }
  if (opts.netns !== undefined && !NETNS_NAME.test(opts.netns)) {
    throw new MbprobeError('INVALID_ARGUMENT', `"${opts.netns}" is not a network namespace name`);
  }

  // The ruleset goes through a file and nft's `include`: nft -i parses one line per command, and a
  // file keeps multi-line bodies intact. One include is one transaction: all of it or none.
  const dir = await mkdtemp(join(tmpdir(), 'mbprobe-nft-'));
  const file = join(dir, 'ruleset.nft');
  if (file.includes('"')) throw new MbprobeError('FIREWALL_FAILED', `temporary path ${file} cannot be quoted for nft`);
  // `flags owner` must be in the same table block as the body: a second `table ... { }` block without
  // it would be an update clearing the owner flag, which the kernel refuses (EOPNOTSUPP).
  await writeFile(file, `table ${family} ${table} {\n  flags owner;\n${body}\n}\n`, { mode: 0o600 });

  const command = opts.netns !== undefined ? 'ip' : nft;
  const args = opts.netns !== undefined ? ['netns', 'exec', opts.netns, nft, '-i'] : ['-i'];
  let child: ChildProcessWithoutNullStreams;
  try {
    // detached: own session, so a terminal's SIGINT does not kill nft (and the table) before our cleanup runs.
    child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw opts.netns !== undefined ? new MbprobeError('IPROUTE2_NOT_FOUND', 'The "ip" command is missing: apt-get install iproute2', { cause: err }) : nftMissing(nft, err);
  }

  let stdout = '';
  let stderr = '';
  let exited = false;
  let exitDescription = '';
  const exitWaiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdin.on('error', () => {
    /* EPIPE when nft is gone: the exit handler reports it */
  });

  const setup = new Promise<void>((resolve, reject) => {
    const sentinel = `mbprobe_sync_${randomBytes(6).toString('hex')}`;
    const listLine = `list table ${family} ${table}`;
    const sentinelLine = `list table ip ${sentinel}`;
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const evaluate = (): void => {
      if (settled) return;
      // Unprivileged, nft fails every command before parsing it and never echoes the command line.
      if (/you must be root|cache initialization failed: Operation not permitted/.test(stderr)) {
        finish(new MbprobeError('NOT_PRIVILEGED', `Installing firewall rules needs root (CAP_NET_ADMIN): run as root, e.g. with sudo.\n${stderr.trim()}`));
        return;
      }
      // The sentinel always fails (no such table); its error block marks "every command before it is done".
      const sentinelDone = new RegExp(`(^|\\n)${sentinelLine}\\n[^\\n]*\\n`).test(stderr);
      if (!sentinelDone) return;
      const listFailed = stderr.split('\n').includes(listLine);
      const loadErrors = errorsBefore(stderr, [listLine, sentinelLine]).trim();
      if (loadErrors !== '' && /Error/.test(loadErrors)) {
        if (/Operation not permitted/.test(loadErrors) && process.getuid?.() !== 0) {
          finish(new MbprobeError('NOT_PRIVILEGED', `Installing firewall rules needs root (CAP_NET_ADMIN): run as root, e.g. with sudo.\n${loadErrors}`));
        } else {
          const hint = /Operation not permitted/.test(loadErrors) ? ' (another process may already hold a table of that name)' : '';
          finish(new MbprobeError('FIREWALL_FAILED', `nft refused the rules for table ${family} ${table}${hint}:\n${loadErrors}`));
        }
        return;
      }
      if (listFailed) {
        finish(new MbprobeError('FIREWALL_FAILED', `nft reported no error but table ${family} ${table} does not exist:\n${stderr.trim()}`));
        return;
      }
      // The listing was written before the sentinel ran; it may just not have been read yet.
      if (hasCompleteListing(stdout, family, table)) finish();
    };
    child.stdout.on('data', (chunk: string) => {
      if (stdout.length < OUTPUT_LIMIT) stdout += chunk;
      evaluate();
    });
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < OUTPUT_LIMIT) stderr += chunk;
      evaluate();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        finish(opts.netns !== undefined ? new MbprobeError('IPROUTE2_NOT_FOUND', 'The "ip" command is missing: apt-get install iproute2', { cause: err }) : nftMissing(nft, err));
      } else {
        finish(new MbprobeError('FIREWALL_FAILED', `Could not start ${command}: ${err.message}`, { cause: err }));
      }
    });
    child.on('exit', (code, signal) => {
      exited = true;
      exitDescription = signal ? `killed by ${signal}` : `exited with code ${code}`;
      for (const w of exitWaiters.splice(0)) w();
    });
    // 'close' comes after 'exit' once stdout/stderr are drained, so the error text is complete.
    child.on('close', () => {
      const text = stderr.trim();
      if (/exec of ".*" failed: No such file or directory/.test(text)) finish(nftMissing(nft));
      else finish(new MbprobeError('FIREWALL_FAILED', `nft ${exitDescription} before confirming table ${family} ${table}${text ? `:\n${text}` : ''}`));
    });
    const timer = setTimeout(() => {
      finish(new MbprobeError('FIREWALL_FAILED', `nft did not confirm table ${family} ${table} within ${timeoutMs} ms${stderr.trim() ? `:\n${stderr.trim()}` : ''}`));
    }, timeoutMs);
    child.stdin.write(`include "${file}"\n${listLine}\n${sentinelLine}\n`);
  });

  try {
    await setup;
  } catch (err) {
    if (!exited) {
      child.stdin.end();
      child.kill('SIGKILL');
    }
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // Held: nothing of this should keep the event loop alive (when the process ends, so does the table).
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as Array<{ unref?: () => void }>) stream.unref?.();

  let closing: Promise<void> | undefined;
  return {
    table,
    family,
    get alive() {
      return !exited;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (exited) {
          resolve();
          return;
        }
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        exitWaiters.push(() => {
          clearTimeout(killer);
          resolve();
        });
        child.stdin.end(`delete table ${family} ${table}\n`);
      });
      return closing;
    },
  };
}
