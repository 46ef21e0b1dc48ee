import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { projectRoot } from './profile.js';
import type { Lab } from './topology.js';

export interface LabVerdict {
  run: string;
  test: string;
  port: number;
  verdict: string;
  detail: Record<string, unknown>;
  timeoutWaitMs: number;
  watchMs: number;
}

export interface LabMeasurement {
  profile: string;
  verdicts: LabVerdict[];
  initiatorDb: string;
  responderDb: string;
  elapsedMs: number;
  initiatorStderr: string;
  responderStderr: string;
}

export interface MeasureOptions {
  workDir: string;
  tests?: string;
  /** The initiator's --concurrency; default: its own default. */
  concurrency?: number;
  /** Extra arguments for `mbprobe-initiator run`. */
  initiatorArgs?: string[];
  family?: 4 | 6;
  /** The path's label (the run's --label, the databases' names); default: the profile's name, +lossy with a WAN emulator. */
  label?: string;
  /** The responder's database; default: responder-<profile>.sqlite in workDir. Several responders may share one. */
  responderDb?: string;
  /** How long the initiator may take before it is killed; default 300 s (a sequential run over a long path takes longer). */
  timeoutMs?: number;
}

/** Starts the real responder in the lab's responder namespace; resolves once it answers. */
export async function startResponder(lab: Lab, db: string): Promise<{ child: ChildProcess; stderr: () => string; stop(): Promise<number | null> }> {
  const bin = join(projectRoot(), 'dist/responder/bin.js');
  const child = lab.spawn(lab.namespaces.responder, [process.execPath, bin, '--db', db], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mbprobe-responder did not start within 10 s:\n${stderr}`)), 10_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('answering on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mbprobe-responder exited with ${code}:\n${stderr}`));
    });
  });
  return {
    child,
    stderr: () => stderr,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGINT');
    }),
  };
}

/** Runs the real initiator in the initiator namespace against the lab's responder. */
export async function runInitiator(lab: Lab, db: string, options: Omit<MeasureOptions, 'workDir'> & { label: string }): Promise<{ verdicts: LabVerdict[]; stderr: string; code: number }> {
  const bin = join(projectRoot(), 'dist/initiator/bin.js');
  const family = options.family ?? 4;
  // As a volunteer names it: by address, or by a name only the initiator's resolver knows (a proxy on the path cannot resolve it).
  const responder = lab.profile.responderByName ? lab.responderNames[family] : family === 6 ? lab.addresses.responder6 : lab.addresses.responder;
  // The lab's responder runs without TLS (its control port is inside the lab's namespaces): plain HTTP, said so.
  const argv = [process.execPath, bin, 'run', '--responder', responder, '--insecure', '--db', db, '--label', options.label, '--json',
    ...(options.tests ? ['--tests', options.tests] : []), ...(options.concurrency ? ['--concurrency', String(options.concurrency)] : []), ...(options.initiatorArgs ?? [])];
  const result = await lab.exec(lab.namespaces.initiator, argv, { allowFailure: true, timeoutMs: options.timeoutMs ?? 300_000 });
  const verdicts = result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => {
    const j = JSON.parse(l) as LabVerdict;
    return { run: j.run, test: j.test, port: j.port, verdict: j.verdict, detail: j.detail, timeoutWaitMs: j.timeoutWaitMs, watchMs: j.watchMs };
  });
  return { verdicts, stderr: result.stderr, code: result.code };
}

/** Responder and initiator across one lab path: every verdict of the run. */
export async function measureAcrossLab(lab: Lab, options: MeasureOptions): Promise<LabMeasurement> {
  const started = Date.now();
  // A path is named by its profile, and its WAN emulator when it has one (clean+lossy).
  const path = options.label ?? (lab.wan ? `${lab.profile.name}+lossy` : lab.profile.name);
  const responderDb = options.responderDb ?? join(options.workDir, `responder-${path}.sqlite`);
  const initiatorDb = join(options.workDir, `initiator-${path}.sqlite`);
  const responder = await startResponder(lab, responderDb);
  try {
    const run = await runInitiator(lab, initiatorDb, { ...options, label: path });
    if (run.code !== 0) throw new Error(`mbprobe-initiator failed (exit ${run.code}) on ${lab.profile.name}:\n${run.stderr}\nresponder:\n${responder.stderr()}`);
    return { profile: path, verdicts: run.verdicts, initiatorDb, responderDb, elapsedMs: Date.now() - started, initiatorStderr: run.stderr, responderStderr: responder.stderr() };
  } finally {
    await responder.stop();
  }
}
