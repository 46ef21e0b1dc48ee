/**
 * Command line for the mbprobe lab (run through scripts/lab):
 *
 *   lab up PROFILE [--id N] [--wan SPEC] [--hops SPEC] [--json]
 *                                      create a persistent lab and leave it up (--wan: a WAN
 *                                      emulator on the initiator's link, e.g. delay=50ms,loss=10%,jitter=30ms;
 *                                      --hops: routers around the middlebox, e.g. 4,middlebox=3,short-quote=2)
 *   lab down [ID|all]                  remove lab ID; `all`: every lab (also ones
 *                                      in use by other processes); no argument:
 *                                      labs started with `up` and stale labs
 *   lab list [--json]                  profiles with descriptions, labs present
 */
import { createLab, destroyLabById, formatHopsSpec, formatWanSpec, LabError, listLabs, PROFILES, removeStaleLabs, type Lab } from './index.js';

const USAGE = `usage: scripts/lab up PROFILE [--id N] [--wan delay=50ms,loss=10%,jitter=30ms] [--hops 4,middlebox=3[,short-quote=2][,mpls=4][,ratelimit=kernel]] [--json]
       scripts/lab down [ID|all]
       scripts/lab list [--json]
profiles: ${Object.keys(PROFILES).join(', ')}`;

function describeLab(lab: Lab): string {
  const ns = lab.namespaces;
  const a = lab.addresses;
  const i = lab.interfaces;
  if (lab.path && lab.hops) {
    return [
      `lab ${lab.id} (${lab.profile.name} at hop ${lab.hops.middlebox} of ${lab.hops.count}): ${lab.profile.description}`,
      `  initiator  netns ${ns.initiator.padEnd(10)} ${i.initiator.padEnd(9)} ${a.initiator.padEnd(15)} ${a.initiator6}`,
      ...lab.path.map((h) => {
        const what = [h.role, ...(h.shortQuote ? ['quotes 8 bytes of TCP'] : []), ...(h.mpls ? ['MPLS extensions'] : [])].join(', ');
        return `  hop ${String(h.hop).padEnd(6)} netns ${h.namespace.padEnd(10)} ${h.left.iface.padEnd(9)} ${h.left.address.padEnd(15)} ${h.left.address6}  (${what})\n` +
          `                   ${''.padEnd(10)} ${h.right.iface.padEnd(9)} ${h.right.address.padEnd(15)} ${h.right.address6}`;
      }),
      `  responder  netns ${ns.responder.padEnd(10)} ${i.responder.padEnd(9)} ${a.responder.padEnd(15)} ${a.responder6}`,
      `             names   ${lab.responderNames[4]} ${lab.responderNames[6]} (resolve in the initiator's namespace only)`,
      `  ICMP rate limits: ${lab.hops.icmpRateLimit === 'kernel' ? "the kernel's defaults" : 'off on every hop'}`,
      ...(ns.wan && lab.wan ? [`  wan        netns ${ns.wan.padEnd(10)} bridge ${i.wanLeft} - ${i.wanRight} between initiator and hop 1: ${formatWanSpec(lab.wan)}`] : []),
      `  e.g.  ip netns exec ${ns.initiator} traceroute -n ${a.responder}      ip netns exec ${ns.middlebox} nft list ruleset`,
      `  remove with: scripts/lab down ${lab.id}`,
    ].join('\n');
  }
  return [
    `lab ${lab.id} (${lab.profile.name}): ${lab.profile.description}`,
    `  initiator  netns ${ns.initiator.padEnd(10)} ${i.initiator.padEnd(8)} ${a.initiator.padEnd(15)} ${a.initiator6}`,
    `  middlebox  netns ${ns.middlebox.padEnd(10)} ${i.middleboxLeft.padEnd(8)} ${a.middleboxLeft.padEnd(15)} ${a.middleboxLeft6}`,
    `                   ${''.padEnd(10)} ${i.middleboxRight.padEnd(8)} ${a.middleboxRight.padEnd(15)} ${a.middleboxRight6}`,
    `  responder  netns ${ns.responder.padEnd(10)} ${i.responder.padEnd(8)} ${a.responder.padEnd(15)} ${a.responder6}`,
    `             names   ${lab.responderNames[4]} ${lab.responderNames[6]} (resolve in the initiator's namespace only)`,
    ...(ns.wan && lab.wan ? [`  wan        netns ${ns.wan.padEnd(10)} bridge ${i.wanLeft} - ${i.wanRight} between initiator and middlebox: ${formatWanSpec(lab.wan)}`] : []),
    `  e.g.  ip netns exec ${ns.initiator} bash      ip netns exec ${ns.middlebox} nft list ruleset`,
    `  remove with: scripts/lab down ${lab.id}`,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const json = rest.includes('--json');
  const args = rest.filter((a) => a !== '--json');
  switch (cmd) {
    case 'up': {
      const profile = args[0];
      if (!profile || profile.startsWith('--')) {
        process.stderr.write(`${USAGE}\n`);
        return 2;
      }
      let id: number | undefined;
      const idAt = args.indexOf('--id');
      if (idAt >= 0) id = Number(args[idAt + 1]);
      const opts: Parameters<typeof createLab>[0] = { profile, keep: true };
      if (id !== undefined) opts.id = id;
      const wanAt = args.indexOf('--wan');
      if (wanAt >= 0) opts.wan = args[wanAt + 1] ?? '';
      const hopsAt = args.indexOf('--hops');
      if (hopsAt >= 0) opts.hops = args[hopsAt + 1] ?? '';
      const lab = await createLab(opts);
      if (json) {
        process.stdout.write(
          `${JSON.stringify({ id: lab.id, profile: lab.profile.name, namespaces: lab.namespaces, interfaces: lab.interfaces, addresses: lab.addresses, responderNames: lab.responderNames, ...(lab.wan ? { wan: formatWanSpec(lab.wan) } : {}), ...(lab.hops ? { hops: formatHopsSpec(lab.hops), path: lab.path } : {}) }, null, 2)}\n`,
        );
      } else process.stdout.write(`${describeLab(lab)}\n`);
      return 0;
    }
    case 'down': {
      const which = args[0];
      let removed: string[] = [];
      if (which === undefined) {
        removed = await removeStaleLabs();
        for (const l of listLabs()) if (l.persistent) removed.push(...(await destroyLabById(l.id)));
      } else if (which === 'all') {
        for (const l of listLabs()) {
          if (l.state === 'in-use') process.stderr.write(`lab: removing lab ${l.id}, in use by pid ${l.pid}\n`);
          removed.push(...(await destroyLabById(l.id)));
        }
      } else {
        const id = Number(which);
        if (!/^\d+$/.test(which)) {
          process.stderr.write(`${USAGE}\n`);
          return 2;
        }
        removed = await destroyLabById(id);
        if (removed.length === 0) process.stderr.write(`lab: no namespaces of lab ${id} were present\n`);
      }
      if (removed.length > 0) process.stdout.write(`removed ${removed.join(' ')}\n`);
      return 0;
    }
    case 'list': {
      const labs = listLabs();
      if (json) {
        const profiles = Object.values(PROFILES).map((p) => ({ name: p.name, description: p.description }));
        process.stdout.write(`${JSON.stringify({ profiles, labs }, null, 2)}\n`);
        return 0;
      }
      process.stdout.write('profiles:\n');
      const w = Math.max(...Object.keys(PROFILES).map((n) => n.length));
      for (const p of Object.values(PROFILES)) process.stdout.write(`  ${p.name.padEnd(w)}  ${p.description}\n`);
      process.stdout.write(labs.length === 0 ? 'labs: none\n' : 'labs:\n');
      for (const l of labs) {
        const owner = l.state === 'persistent' ? 'persistent (scripts/lab up)' : l.state === 'in-use' ? `in use by pid ${l.pid}` : 'stale';
        process.stdout.write(`  ${String(l.id).padStart(2)}  ${(l.profile ?? '?').padEnd(w)}  ${owner}  [${l.namespaces.join(' ')}]\n`);
      }
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`lab: unknown command ${cmd}\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof LabError) process.stderr.write(`lab: ${err.message}\n`);
    else process.stderr.write(`lab: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
