/**
 * `mbprobe-initiator locate` across a lab path: the real responder and initiator, every localised
 * test's JSON line (what the integration tests and the benchmark read).
 */
import { join } from 'node:path';
import { projectRoot } from './profile.js';
import { startResponder } from './measure.js';
import type { Lab } from './topology.js';

export interface LocatedTest {
  run: string;
  test: string;
  port: number;
  verdict: string;
  status: string;
  reason?: string;
  summary: string;
  location: {
    status: string;
    reason?: string;
    fields: string[];
    last?: { ttl: number; address: string | null; responder?: true } | null;
    first?: { ttl: number; address: string | null; responder?: true };
    proxy?: { hop: number; address: string | null; answerTtl: number };
    unknown?: Array<{ ttl: number; why: string }>;
    rateLimited: number[];
    silent: number[];
    responderHop?: number;
    rounds?: number;
    tracingMs?: number;
  };
  routers: Array<{ ttl: number; address: string | null; kind: string }>;
}

export interface LocateOptions {
  workDir: string;
  tests?: string;
  ports?: readonly number[];
  family?: 4 | 6;
  /** Extra arguments for `mbprobe-initiator locate`. */
  initiatorArgs?: string[];
  label?: string;
}

/** Runs `locate --json` from the lab's initiator against its responder; every localised test, and how long the command took. */
export async function locateAcrossLab(lab: Lab, options: LocateOptions): Promise<{ located: LocatedTest[]; elapsedMs: number; stderr: string; initiatorDb: string }> {
  const label = options.label ?? `${lab.profile.name}-hop${lab.hops?.middlebox ?? 1}`;
  const initiatorDb = join(options.workDir, `locate-${label}.sqlite`);
  const responder = await startResponder(lab, join(options.workDir, `locate-responder-${label}.sqlite`));
  try {
    const family = options.family ?? 4;
    const target = lab.profile.responderByName ? lab.responderNames[family] : family === 6 ? lab.addresses.responder6 : lab.addresses.responder;
    const argv = [process.execPath, join(projectRoot(), 'dist/initiator/bin.js'), 'locate', '--responder', target, '--insecure', '--db', initiatorDb, '--label', label, '--json',
      ...(options.tests ? ['--tests', options.tests] : []), ...(options.ports ? ['--ports', options.ports.join(',')] : []), ...(options.initiatorArgs ?? [])];
    const started = Date.now();
    const result = await lab.exec(lab.namespaces.initiator, argv, { allowFailure: true, timeoutMs: 600_000 });
    const elapsedMs = Date.now() - started;
    if (result.code !== 0) throw new Error(`mbprobe-initiator locate failed (exit ${result.code}) on ${label}:\n${result.stderr}\nresponder:\n${responder.stderr()}`);
    const located = result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LocatedTest);
    return { located, elapsedMs, stderr: result.stderr, initiatorDb };
  } finally {
    await responder.stop();
  }
}
