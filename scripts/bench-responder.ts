/**
 * npm run bench, the responder under load (issue: "a responder that holds a crowd"), across a lab path
 * (needs root; skipped otherwise). Timings on a shared 2-core machine are noisy: compare the ratios
 * measured in the same run.
 *  1. Floods: the C flood generator (lab/tools/flood.c) in the initiator's namespace sends SYNs of
 *     registered tests (the responder answers each) mixed with scanner-like junk (random sources,
 *     ports and flags, a quarter malformed), at several rates, with the tests in 1 session and in N
 *     sessions from N addresses. For each: segments sent, captured (the responder's count), answered,
 *     answers that arrived, and what the capture lost (kernel ring / queue). The same floods against
 *     a minimal C echo responder (lab/tools/echo-responder.c: libpcap with cap's settings, a SYN-ACK
 *     per SYN) over the same link give the yardstick.
 *  2. Memory: the responder's resident memory before, during and after a sustained flood.
 *  3. The crowd: 50 concurrent sessions (half the addresses behind a NAT) running the full catalogue
 *     on three ports from one process, every verdict compared with a run of the same address alone.
 * Options (environment): MBPROBE_BENCH_FLOOD_SECONDS (each flood, default 5), MBPROBE_BENCH_SUSTAINED_SECONDS
 * (the memory flood, default 60), MBPROBE_BENCH_RATES (default 25000,50000,100000,150000),
 * MBPROBE_BENCH_CROWD (sessions, default 50).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, removeStaleLabs, type Lab } from '../lab/index.js';
import { addCrowdAddresses, crowdProfile, runCrowd, verdictsOf } from '../lab/crowd.js';
import { answersArrived, flood, registerFlows, responderMetrics, startEchoResponder, startMbprobeResponder, type Flow } from '../lab/load.js';

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;
const FLOOD_SECONDS = Number(env('MBPROBE_BENCH_FLOOD_SECONDS', '5'));
const SUSTAINED_SECONDS = Number(env('MBPROBE_BENCH_SUSTAINED_SECONDS', '60'));
const RATES = env('MBPROBE_BENCH_RATES', '25000,50000,100000,150000').split(',').map(Number);
const CROWD = Number(env('MBPROBE_BENCH_CROWD', '50'));
const SESSIONS = 50;
const FLOWS = 200;
/** Half the flood answered SYNs, half junk. */
const JUNK = 0.5;
const MiB = 1024 * 1024;
const CAPTURE_BUFFER_MIB = 64;

const pct = (part: number, whole: number): string => `${whole ? ((100 * part) / whole).toFixed(1) : '0.0'}%`;
const k = (n: number): string => `${(n / 1000).toFixed(1)}k`;

/** The responder's metrics once it has worked off what it had queued (its count of received segments stands still). */
async function settled(lab: Lab): Promise<Record<string, number>> {
  let previous = await responderMetrics(lab);
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await responderMetrics(lab);
    const key = 'mbprobe_responder_segments_total{outcome="received"}';
    if (now[key] === previous[key]) return now;
    previous = now;
  }
}

export async function floodsAgainstBoth(lab: Lab, dir: string): Promise<void> {
  const addresses = await addCrowdAddresses(lab, SESSIONS, 0);
  console.log(`responder floods, clean lab path, ${FLOOD_SECONDS} s each, ${100 * (1 - JUNK)}% SYNs of ${FLOWS} registered tests (answered) + ${100 * JUNK}% scanner junk (random sources, ports, flags; a quarter malformed)`);
  console.log('  mbprobe-responder with --rate 1000000 (the per-source limit would otherwise cap one address at 20,000 answers/s), capture buffer ' +
    `${CAPTURE_BUFFER_MIB} MiB, on "any" and on its Ethernet interface; the C echo responder with the same libpcap settings answers the same SYNs`);
  console.log('  responder    sessions  offered/s  sent/s   captured          answered (arrived)        behind   kernel drops  queue drops');
  const rows: Array<{ who: string; rate: number; captured: number; sent: number }> = [];
  // On "any" (Linux cooked capture) libpcap gives every packet a ring slot of the whole snap length (64 KiB);
  // on an Ethernet interface without offloads, of the MTU: the same buffer holds 30 times as many packets.
  for (const [sessions, iface] of [[1, 'any'], [SESSIONS, 'any'], [SESSIONS, lab.interfaces.responder]] as const) {
    for (const rate of RATES) {
      // A fresh responder per flood: its counters are this flood's alone, nothing left over from the last one.
      const responder = await startMbprobeResponder(lab, join(dir, `flood-${sessions}-${iface}-${rate}.sqlite`), ['--rate', '1000000', '--capture-buffer', String(CAPTURE_BUFFER_MIB), '--iface', iface]);
      try {
        const flows = await registerFlows(lab, addresses.routed.slice(0, sessions), FLOWS / sessions);
        const result = await flood(lab, { flows, rate, seconds: FLOOD_SECONDS, junk: JUNK });
        const m = await settled(lab);
        result.answers = await answersArrived(lab); // late ones included
        const captured = m['mbprobe_responder_segments_total{outcome="received"}'];
        const answered = m['mbprobe_responder_segments_total{outcome="answered"}'];
        rows.push({ who: `mbprobe/${sessions} on ${iface}`, rate, captured, sent: result.sent });
        console.log(`  mbprobe ${iface.padEnd(4)}${String(sessions).padStart(8)}  ${k(rate).padStart(9)}  ${k(result.rate).padStart(6)}   ${String(captured).padStart(7)} (${pct(captured, result.sent).padStart(6)})  ` +
          `${String(answered).padStart(7)} of ${String(result.syns).padStart(7)} (${String(result.answers).padStart(7)})  ${String(m['mbprobe_responder_segments_total{outcome="behind"}']).padStart(7)}  ${String(m['mbprobe_responder_capture_dropped_total{where="kernel"}']).padStart(12)}  ${String(m['mbprobe_responder_capture_dropped_total{where="queue"}']).padStart(11)}`);
      } finally {
        await responder.stop();
      }
    }
  }
  const sports: [number, number] = [20000, 20000 + FLOWS - 1];
  const echoFlows: Flow[] = Array.from({ length: FLOWS }, (_, i) => ({ src: addresses.routed[i % SESSIONS], srcPort: sports[0] + i, dstPort: 34343, isn: i * 104729 }));
  for (const rate of RATES) {
    const echo = await startEchoResponder(lab, { bufferBytes: CAPTURE_BUFFER_MIB * MiB, sports });
    const result = await flood(lab, { flows: echoFlows, rate, seconds: FLOOD_SECONDS, junk: JUNK });
    await new Promise((r) => setTimeout(r, 1000));
    result.answers = await answersArrived(lab);
    const counts = JSON.parse(await echo.stop()) as { captured: number; answered: number; pcapReceived: number; pcapDropped: number };
    rows.push({ who: 'echo', rate, captured: counts.captured, sent: result.sent });
    console.log(`  C echo any  ${'-'.padStart(8)}  ${k(rate).padStart(9)}  ${k(result.rate).padStart(6)}   ${String(counts.captured).padStart(7)} (${pct(counts.captured, result.sent).padStart(6)})  ` +
      `${String(counts.answered).padStart(7)} of ${String(result.syns).padStart(7)} (${String(result.answers).padStart(7)})  ${'-'.padStart(7)}  ${String(counts.pcapDropped).padStart(12)}  ${'-'.padStart(11)}`);
  }
  for (const rate of RATES) {
    const echo = rows.find((r) => r.who === 'echo' && r.rate === rate);
    const ratios = rows.filter((r) => r.who.startsWith('mbprobe') && r.rate === rate).map((r) => `${r.who.split('/')[1]} ${echo && echo.captured ? (r.captured / r.sent / (echo.captured / echo.sent)).toFixed(2) : '-'}`);
    console.log(`  captured, mbprobe / C echo at ${k(rate)}/s offered: ${ratios.join(', ')}`);
  }
}

export async function sustainedFlood(lab: Lab, dir: string): Promise<void> {
  const responder = await startMbprobeResponder(lab, join(dir, 'sustained.sqlite'), ['--rate', '1000000', '--capture-buffer', String(CAPTURE_BUFFER_MIB)]);
  try {
    const addresses = [`198.18.${lab.id}.10`];
    const flows = await registerFlows(lab, addresses, 20);
    const rss: number[] = [responder.rss()];
    const step = Math.min(10, SUSTAINED_SECONDS);
    let sent = 0;
    for (let t = 0; t < SUSTAINED_SECONDS; t += step) {
      sent += (await flood(lab, { flows, rate: 50_000, seconds: step, junk: 0.9 })).sent;
      rss.push(responder.rss());
    }
    const metrics = await responderMetrics(lab);
    console.log(`sustained flood: ${SUSTAINED_SECONDS} s at 50k segments/s (90% junk, 10% answered SYNs), ${sent} sent, ` +
      `${metrics['mbprobe_responder_segments_total{outcome="received"}']} captured, ${metrics['mbprobe_responder_capture_dropped_total{where="kernel"}']} kernel drops`);
    console.log(`  resident memory every ${step} s (MB): ${rss.map((b) => (b / 1e6).toFixed(0)).join(' ')}; unattributed kept ${metrics.mbprobe_responder_unattributed_kept}, ` +
      `heap ${(metrics.mbprobe_responder_nodejs_heap_size_used_bytes / 1e6).toFixed(0)} MB, database ${(metrics.mbprobe_responder_database_bytes / 1e6).toFixed(1)} MB`);
  } finally {
    await responder.stop();
  }
}

export async function crowd(dir: string): Promise<void> {
  const lab = await createLab({ profile: crowdProfile });
  try {
    const addresses = await addCrowdAddresses(lab, CROWD, Math.floor(CROWD / 2));
    const responder = await startMbprobeResponder(lab, join(dir, 'crowd.sqlite'));
    try {
      const rssBefore = responder.rss();
      const alone = { routed: await runCrowd(lab, [addresses.routed[0]]), natted: await runCrowd(lab, [addresses.natted[0]]) };
      const together = await runCrowd(lab, [...addresses.routed, ...addresses.natted]);
      if (together.code !== 0) console.log(`  the crowd's driver failed (exit ${together.code}): ${together.stderr.trim().split('\n').slice(-5).join(' | ')}`);
      let differ = 0;
      const examples: string[] = [];
      for (const address of [...addresses.routed, ...addresses.natted]) {
        const reference = addresses.natted.includes(address) ? verdictsOf(alone.natted.verdicts, addresses.natted[0]) : verdictsOf(alone.routed.verdicts, addresses.routed[0]);
        const mine = verdictsOf(together.verdicts, address);
        for (const key of new Set([...Object.keys(reference), ...Object.keys(mine)])) {
          if (mine[key] === reference[key]) continue;
          differ++;
          if (examples.length < 5) examples.push(`${address} ${key}: ${mine[key]} (alone: ${reference[key]})`);
        }
      }
      const inconclusive = together.verdicts.filter((v) => v.verdict === 'inconclusive').length;
      const metrics = await responderMetrics(lab);
      console.log(`crowd: ${CROWD} sessions at once (${addresses.routed.length} routed, ${addresses.natted.length} behind a NAT), full catalogue x 3 ports each, driven from one process`);
      console.log(`  ${together.verdicts.length} verdicts in ${(together.ms / 1000).toFixed(1)} s (one session alone: ${(alone.routed.ms / 1000).toFixed(1)} s routed, ${(alone.natted.ms / 1000).toFixed(1)} s behind the NAT); ` +
        `different from the same address alone: ${differ}; inconclusive: ${inconclusive}${examples.length ? ` (${examples.join('; ')})` : ''}`);
      console.log(`  responder: resident memory ${(rssBefore / 1e6).toFixed(0)} -> ${(responder.rss() / 1e6).toFixed(0)} MB, ${metrics['mbprobe_responder_segments_total{outcome="received"}']} segments received, ` +
        `${metrics['mbprobe_responder_segments_total{outcome="unattributed"}']} unattributed, ${metrics['mbprobe_responder_segments_total{outcome="behind"}']} not answered for being behind, ` +
        `${metrics['mbprobe_responder_capture_dropped_total{where="kernel"}']} kernel drops, initiators' exit ${together.code}`);
    } finally {
      await responder.stop();
    }
  } finally {
    await lab.destroy();
  }
}

export async function responderUnderLoad(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('responder under load: skipped (needs root)');
    return;
  }
  await removeStaleLabs();
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-bench-load-'));
  try {
    const lab = await createLab({ profile: 'clean' });
    try {
      await floodsAgainstBoth(lab, dir);
      await sustainedFlood(lab, dir);
    } finally {
      await lab.destroy();
    }
    await crowd(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
