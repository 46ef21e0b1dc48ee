/**
 * `npm run bench`, scans: `mbprobe-initiator scan` of 1,000 lab targets (addresses on one server
 * namespace: 200 IPv4, 800 IPv6, real Linux servers of lab/servers.ts, ports 443 and 80, every server
 * test) at the default SYN rate and concurrency and at a high rate: wall time, packets per second (all
 * the segments the scan sent and received, from its database), the peak SYNs in any one second (the
 * rate limit holding), the scan process's peak memory, and whether both runs gave identical verdicts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../shared/store.js';
import { decodePacket } from '../shared/wire/packet.js';
import { TcpFlag } from '../shared/wire/tcp.js';
import { DEFAULT_SCAN_CONCURRENCY, DEFAULT_SYN_RATE } from '../initiator/scan/command.js';
import { createLab, removeStaleLabs } from '../lab/index.js';
import { addServerAddresses, SERVER_CONFIGS, startServers } from '../lab/servers.js';
import { scanAcrossLab, type ScanResultLine } from '../lab/scan.js';

const TARGETS = 1000;
/**
 * The high rate: ten times the default, with every target at once. On the 2-core lab machine the
 * initiator keeps up with this; at 5,000 SYN/s it fell behind (answers handled late, SYNs resent,
 * RSTs late), the servers' SYN queues filled and they answered with SYN cookies, which carry no TFO
 * cookie: the verdicts changed. A rate above what the scanning host sustains measures the host.
 */
const HIGH = { rate: 2000, concurrency: 1000 };

/** From the scan's database: segments sent and received, and the most SYNs sent within any one second. */
function packetCounts(db: string): { sent: number; received: number; peakSynsPerSecond: number; synsSent: number; captureLost: number } {
  const store = Store.open(db, { readonly: true });
  try {
    const info = store.runs()[0].hostInfo as { synsSent?: number; capturedPacketsLost?: number };
    const rows = store.db.prepare<[], { dir: string; at_us: number; bytes: Buffer }>('SELECT dir, at_us, bytes FROM segments').all();
    const synTimes = rows.filter((r) => r.dir === 'sent' && ((decodePacket(r.bytes).tcp?.flags ?? 0) & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN)
      .map((r) => r.at_us).sort((a, b) => a - b);
    let peak = 0;
    for (let i = 0, j = 0; i < synTimes.length; i++) {
      while (synTimes[i] - synTimes[j] >= 1_000_000) j++;
      peak = Math.max(peak, i - j + 1);
    }
    return {
      sent: rows.filter((r) => r.dir === 'sent').length, received: rows.filter((r) => r.dir === 'received').length, peakSynsPerSecond: peak,
      synsSent: info.synsSent ?? 0, captureLost: info.capturedPacketsLost ?? 0,
    };
  } finally {
    store.close();
  }
}

const key = (rows: readonly ScanResultLine[]): string => rows.map((r) => `${r.target}:${r.port}:${r.test}=${r.verdict}`).sort().join('\n');

export async function scanOfManyTargets(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('scan of 1,000 lab targets: skipped (needs root)');
    return;
  }
  await removeStaleLabs();
  const lab = await createLab({ profile: 'clean' });
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-bench-scan-'));
  try {
    const addresses = await addServerAddresses(lab, TARGETS);
    const servers = await startServers(lab, SERVER_CONFIGS.features);
    const list = join(dir, 'targets.txt');
    writeFileSync(list, `# ${TARGETS} lab servers\n${addresses.join('\n')}\n`);
    // The scan's peak memory, written by the scan process itself as it exits.
    const preload = join(dir, 'maxrss.cjs');
    writeFileSync(preload, "process.on('exit', () => require('fs').writeSync(2, `maxrss ${process.resourceUsage().maxRSS}\\n`));\n");
    console.log(`scan of ${TARGETS} lab targets (${addresses.filter((a) => !a.includes(':')).length} IPv4, ${addresses.filter((a) => a.includes(':')).length} IPv6; ports 443,80; all ${'7'} server tests; real Linux servers, clean path)`);
    const runs: Array<{ label: string; results: ScanResultLine[] }> = [];
    for (const [label, options] of [[`default (${DEFAULT_SYN_RATE} SYN/s, concurrency ${DEFAULT_SCAN_CONCURRENCY})`, {}], [`high (${HIGH.rate} SYN/s, concurrency ${HIGH.concurrency})`, HIGH]] as const) {
      const db = join(dir, `scan-${runs.length}.sqlite`);
      const scan = await scanAcrossLab(lab, { db, targets: [list], ports: [443, 80], gapMs: 200, ...options, extraArgs: ['--label', 'bench'], nodeArgs: ['--require', preload] });
      if (scan.code !== 0) throw new Error(`scan failed: ${scan.stderr}`);
      const maxRssKiB = Number(/maxrss (\d+)/.exec(scan.stderr)?.[1] ?? NaN);
      // The servers' kernel answering with SYN cookies (its SYN queue full: no TFO cookies then), since the lab began.
      const nstat = await lab.exec(lab.namespaces.responder, ['nstat', '-asz', 'TcpExtTCPReqQFullDoCookies'], { allowFailure: true });
      const cookies = Number(/TcpExtTCPReqQFullDoCookies\s+(\d+)/.exec(nstat.stdout)?.[1] ?? 0);
      const packets = packetCounts(db);
      const seconds = scan.elapsedMs / 1000;
      console.log(`  ${label.padEnd(38)} ${seconds.toFixed(1).padStart(6)} s  ${scan.results.length} tests  ` +
        `${((packets.sent + packets.received) / seconds).toFixed(0)} packets/s (${packets.sent} sent, ${packets.received} received)  ` +
        `${packets.synsSent} SYNs, peak ${packets.peakSynsPerSecond} in one second  capture lost ${packets.captureLost}  server SYN cookies ${cookies}  peak memory ${(maxRssKiB / 1024).toFixed(0)} MiB`);
      runs.push({ label, results: scan.results });
    }
    const same = key(runs[0].results) === key(runs[1].results);
    console.log(`  verdicts identical at both rates: ${same ? 'yes' : 'NO'} (${runs[0].results.length} results)`);
    await servers.stop();
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
