/** The real `mbprobe-initiator scan` run in a lab's initiator namespace against the lab's servers (lab/servers.ts). */
import { join } from 'node:path';
import { projectRoot } from './profile.js';
import type { Lab } from './topology.js';

export interface ScanResultLine {
  run: string;
  target: string;
  targetName: string | null;
  port: number;
  test: string;
  verdict: string;
  detail: Record<string, unknown>;
  runs: number;
}

export interface LabScanOptions {
  db: string;
  /** Targets: addresses or names (default: the responder's names, IPv4 and IPv6, which only the initiator's namespace resolves). */
  targets?: string[];
  ports: readonly number[];
  tests?: readonly string[];
  concurrency?: number;
  rate?: number;
  /** Politeness gap in ms (default 0: the lab's servers need no politeness). */
  gapMs?: number;
  extraArgs?: string[];
  /** Arguments for node itself (e.g. --require a preload). */
  nodeArgs?: string[];
  timeoutMs?: number;
}

export async function scanAcrossLab(lab: Lab, o: LabScanOptions): Promise<{ results: ScanResultLine[]; stderr: string; code: number; elapsedMs: number }> {
  const targets = o.targets ?? [lab.responderNames[4], lab.responderNames[6]];
  const argv = [process.execPath, ...(o.nodeArgs ?? []), join(projectRoot(), 'dist/initiator/bin.js'), 'scan', '--targets', ...targets, '--ports', o.ports.join(','),
    '--allow-private', '--json', '--db', o.db, '--gap', String(o.gapMs ?? 0),
    ...(o.tests ? ['--tests', o.tests.join(',')] : []), ...(o.concurrency ? ['--concurrency', String(o.concurrency)] : []),
    ...(o.rate ? ['--rate', String(o.rate)] : []), ...(o.extraArgs ?? [])];
  const started = performance.now();
  const r = await lab.exec(lab.namespaces.initiator, argv, { allowFailure: true, timeoutMs: o.timeoutMs ?? 600_000 });
  const results = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ScanResultLine);
  return { results, stderr: r.stderr, code: r.code, elapsedMs: performance.now() - started };
}
