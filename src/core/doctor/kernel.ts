/**
 * Kernel support, from probes that change nothing (`nft --check` of a throwaway table using the
 * expression; the xtables extensions the kernel has loaded) and from what policy routing shows.
 */
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { KERNEL_PROBES } from './kernel-probes.js';

export function checkKernel(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const { snapshot, config } = input;
  const probes = snapshot.host?.probes;
  const wanted = KERNEL_PROBES.filter((p) => !p.id.startsWith('nft.tproxy.ipv') || config.families.includes(Number(p.id.slice(-1)) as 4 | 6));
  const nftWorks = snapshot.nft !== null && snapshot.nft !== undefined;
  if (probes && nftWorks) {
    for (const p of wanted) {
      const r = probes[p.id];
      if (!r) continue;
      const id = `kernel.${p.id}`;
      if (r.ok) out.push(finding('kernel', id, 'pass', `nft --check accepts ${p.rule}`, `${p.what} is available`));
      else out.push(finding('kernel', id, 'fail', `nft --check refuses \`${p.rule}\`: ${r.detail ?? 'no reason given'}`, `${p.what} is missing: the rules cannot be loaded (module ${p.module}, or a kernel built without it)`, `modprobe ${p.module}`));
    }
  } else if (snapshot.iptables.ipv4 !== undefined) {
    const targets = snapshot.host?.xtables?.targets4;
    const matches = snapshot.host?.xtables?.matches4;
    if (targets !== undefined) {
      const has = targets.split('\n').includes('TPROXY');
      out.push(finding('kernel', 'kernel.xt.tproxy', has ? 'pass' : 'warn', has ? 'the TPROXY target is loaded' : 'the TPROXY target is not loaded (/proc/net/ip_tables_targets)', 'the iptables backend needs the TPROXY target; it loads with the first rule using it, or fails with "Extension TPROXY revision 0 not supported"', has ? undefined : 'modprobe xt_TPROXY'));
    }
    if (matches !== undefined) {
      const has = matches.split('\n').includes('socket');
      out.push(finding('kernel', 'kernel.xt.socket', has ? 'pass' : 'warn', has ? 'the socket match is loaded' : 'the socket match is not loaded (/proc/net/ip_tables_matches)', 'the divert chain of the iptables backend needs -m socket', has ? undefined : 'modprobe xt_socket'));
    }
  }
  const ioUring = snapshot.host?.ioUring;
  if (ioUring) {
    // Opt-in: without it the epoll engines run, so a host without io_uring only hears why.
    if (ioUring.available) out.push(finding('kernel', 'kernel.io_uring', 'pass', ioUring.why, 'the uring engines (--tcp-engine uring, --udp-engine uring) can run'));
    else out.push(finding('kernel', 'kernel.io_uring', 'warn', ioUring.why, '--tcp-engine uring falls back to the splice engine here, --udp-engine uring to epoll (the default engines are unaffected)'));
  }
  for (const family of config.families) {
    const rules = input.world.routing.rules.filter((r) => r.family === family);
    const error = snapshot.errors[`ipRules.ipv${family}`];
    if (error !== undefined) continue;
    if (rules.length === 0) {
      out.push(finding('kernel', `kernel.policy-routing.ipv${family}`, 'fail', `\`ip -${family} rule\` lists no rules`, `the kernel has no IPv${family} policy routing (CONFIG_IP${family === 6 ? 'V6' : ''}_MULTIPLE_TABLES) or IPv${family} is disabled: marked packets cannot be routed to the local table`));
    } else {
      out.push(finding('kernel', `kernel.policy-routing.ipv${family}`, 'pass', `${rules.length} IPv${family} ip rules`, `IPv${family} policy routing is available`));
    }
  }
  return out;
}
