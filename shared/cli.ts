import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { MbprobeError, type ErrorCode } from './wire/errors.js';

/** Exit codes of every mbprobe program (design contract). */
export const ExitCode = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

/** Errors that mean "you called it wrong", as opposed to "the measurement failed". */
export class UsageError extends MbprobeError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'UsageError';
  }
}

/** mbprobe's version from its package.json: two levels up from dist/shared/, one from shared/ (tests run the sources). */
export const TOOL_VERSION: string = (() => {
  for (const relative of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'mbprobe' && pkg.version) return pkg.version;
    } catch { /* not there: try the next */ }
  }
  return '0.0.0';
})();

/** "1 run", "2 runs": a count with its noun, for messages. */
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/**
 * A reader that stops early (`mbprobe-initiator list | head`) closes our stdout: that ends the
 * program quietly, as for any Unix filter, instead of an unhandled EPIPE. Called by the bin scripts.
 */
export function exitQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

/**
 * Ctrl-C (or SIGTERM) during a measurement: the first asks to stop after the tests under way (the
 * signal aborts), a second forces the exit. `release` removes the handlers.
 */
export function stopOnInterrupt(program: string, io: CliIo): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = (): void => {
    io.stderr(`\n${program}: stopping after the tests under way (Ctrl-C again to force)\n`);
    stop.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { signal: stop.signal, release: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); } };
}

export const processIo: CliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/**
 * Runs a commander program and maps every outcome to the contract's exit codes: 0 success,
 * 1 measurement/runtime failure, 2 usage error. Nothing here calls process.exit.
 */
export async function runProgram(program: Command, argv: readonly string[], io: CliIo): Promise<number> {
  program.exitOverride();
  program.configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  for (const sub of program.commands) sub.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return ExitCode.OK;
      return ExitCode.USAGE;
    }
    if (error instanceof UsageError) {
      io.stderr(`${program.name()}: ${error.message}\n`);
      return ExitCode.USAGE;
    }
    if (error instanceof MbprobeError) {
      io.stderr(`${program.name()}: ${error.message} [${error.code}]\n`);
      return ExitCode.FAILURE;
    }
    io.stderr(`${program.name()}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return ExitCode.FAILURE;
  }
}

/** Raw sockets, packet capture and firewall rules need root or CAP_NET_RAW + CAP_NET_ADMIN. */
export function hasNetworkPrivileges(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const eff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1];
    if (!eff) return false;
    const caps = BigInt(`0x${eff}`);
    const CAP_NET_ADMIN = 12n;
    const CAP_NET_RAW = 13n;
    return ((caps >> CAP_NET_ADMIN) & 1n) === 1n && ((caps >> CAP_NET_RAW) & 1n) === 1n;
  } catch {
    return false;
  }
}

export function requireNetworkPrivileges(program: string): void {
  if (!hasNetworkPrivileges()) {
    throw new MbprobeError('NOT_PRIVILEGED', `${program} sends raw segments, captures packets and installs firewall rules: run it as root (sudo ${program} ...) or grant CAP_NET_RAW and CAP_NET_ADMIN`);
  }
}

/** Parses "34343,80,443" into ports, or throws a UsageError naming the bad part. */
export function parsePortList(text: string, option = '--ports'): number[] {
  const ports = text.split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535) throw new UsageError('BAD_PORT', `${option}: "${p}" is not a port number (1-65535)`);
    return n;
  });
  if (ports.length === 0) throw new UsageError('BAD_PORT', `${option}: give at least one port, e.g. ${option} 34343,80,443`);
  return [...new Set(ports)];
}

/** A whole number of at least `min` (1 unless given) from an option's text, or a UsageError naming the option. */
export function parsePositiveInt(text: string, option: string, min: 0 | 1 = 1): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min) {
    throw new UsageError('BAD_NUMBER', `${option}: "${text}" is not ${min === 1 ? 'a positive whole number' : 'a whole number (0 or more)'}`);
  }
  return n;
}
