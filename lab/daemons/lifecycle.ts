/**
 * How every lab daemon lives: it runs `main` when started as a program (not when imported by a
 * test), says `ready` once its captures are open, and stops cleanly on SIGTERM/SIGINT and, with
 * `--exit-on-stdin-end`, when its parent (the lab) goes away and closes its stdin.
 */
import { pathToFileURL } from 'node:url';

/** What `main` returns: how to stop (close captures and sockets) before the process exits. */
export type Stop = () => void;

export function runDaemon(name: string, moduleUrl: string, main: (argv: string[]) => Stop): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const argv = process.argv.slice(2);
  let stop: Stop;
  try {
    stop = main(argv);
  } catch (e) {
    process.stderr.write(`${name}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const exit = (): never => {
    stop();
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  if (argv.includes('--exit-on-stdin-end')) {
    process.stdin.on('end', exit);
    process.stdin.on('error', exit);
    process.stdin.resume();
  }
  process.stdout.write('ready\n');
}

/** The value after `name` in argv, or an error naming what is missing. */
export function argValue(argv: string[], name: string): string {
  const at = argv.indexOf(name);
  const value = at >= 0 ? argv[at + 1] : undefined;
  if (!value) throw new Error(`missing ${name}`);
  return value;
}
