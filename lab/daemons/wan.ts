/**
 * The WAN emulator's bridge: runs in the lab's wan namespace between two veth ends (`--left` faces
 * the initiator, `--right` the middlebox), takes every frame arriving on one end (libpcap, inbound
 * only, so what it injects itself is never taken again) and puts it on the other end after the
 * delay lab/wan.ts decides, or drops it. A layer-2 bridge: it is not a hop (no TTL decrement, no
 * address), so it can sit under any profile without changing what the profile does.
 *
 *   node dist/lab/daemons/wan.js --left IF --right IF --spec 'delay=50ms,loss=10%,jitter=30ms' [--exit-on-stdin-end]
 *
 * Prints `ready` once both captures are open (lab/daemons/lifecycle.ts); on SIGUSR1 (and at exit) one JSON line of counters.
 */
import { openFrameCapture, type FrameCapture } from '../../shared/net/capture.js';
import { argValue, runDaemon, type Stop } from './lifecycle.js';
import { parseWanSpec, seededRandom, wanDirection, type WanDecision } from '../wan.js';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ICMPV6 = 58;

/** Is the frame subject to loss? IP packets are; ARP and IPv6 neighbour discovery / router messages are not. */
export function lossApplies(frame: Uint8Array): boolean {
  if (frame.length < 14) return false;
  const type = (frame[12] << 8) | frame[13];
  if (type === ETHERTYPE_IPV4) return true;
  if (type !== ETHERTYPE_IPV6) return false;
  if (frame.length < 14 + 41 || frame[14 + 6] !== ICMPV6) return true;
  const icmpType = frame[14 + 40];
  return icmpType < 133 || icmpType > 137;
}

interface Counters {
  forwarded: number;
  lost: number;
}

function main(argv: string[]): Stop {
  const spec = parseWanSpec(argValue(argv, '--spec'));
  const left = openFrameCapture({ iface: argValue(argv, '--left'), filter: 'inbound' });
  const right = openFrameCapture({ iface: argValue(argv, '--right'), filter: 'inbound' });
  const counters: Record<'up' | 'down', Counters> = { up: { forwarded: 0, lost: 0 }, down: { forwarded: 0, lost: 0 } };
  const bridge = (from: FrameCapture, to: FrameCapture, decide: (lossy: boolean) => WanDecision, count: Counters): void => {
    from.onFrame((frame) => {
      const decision = decide(lossApplies(frame));
      if (decision.lost) {
        count.lost++;
        return;
      }
      count.forwarded++;
      if (decision.delayMs < 0.5) to.inject(frame);
      else setTimeout(() => to.inject(frame), decision.delayMs);
    });
  };
  bridge(left, right, wanDirection(spec.up, seededRandom(spec.seed)), counters.up);
  bridge(right, left, wanDirection(spec.down, seededRandom(spec.seed ^ 0x9e3779b9)), counters.down);
  const report = (): void => {
    process.stdout.write(`${JSON.stringify(counters)}\n`);
  };
  process.on('SIGUSR1', report);
  return () => {
    report();
    left.close();
    right.close();
  };
}

runDaemon('wan', import.meta.url, main);
