/**
 * Process limits: the TCP connection cap a worker of each listener would apply under the descriptor
 * limit (the daemon raises its soft RLIMIT_NOFILE to the hard one, so the hard limit of this
 * process is what it gets when started the same way), against the configured maxConnections.
 */
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';

export function checkLimits(input: DoctorInput): Finding[] {
  return (input.capacity ?? []).map((c) => {
    const id = `limits.connections.${c.listener}`;
    if (c.perWorker >= c.configured) {
      return finding('limits', id, 'pass', `listener ${c.listener}: the descriptor limit ${c.fileLimit} allows the configured ${c.configured} connections per worker`, 'accepting pauses only at the configured cap');
    }
    const needed = c.neededFileLimit;
    const shares = c.sharedPipes > 0 ? `${c.descriptorsPerFlow} per flow plus 2 for each of ${c.sharedPipes} pipes the flows with bytes in flight share` : `${c.descriptorsPerFlow} per flow`;
    return finding(
      'limits',
      id,
      'warn',
      `listener ${c.listener}: at most ${c.perWorker} connections per worker, not the configured ${c.configured}: the descriptor limit ${c.fileLimit} (RLIMIT_NOFILE) holds (${c.fileLimit} - ${c.reservedDescriptors} reserved) at ${shares}`,
      'each worker pauses accepting at the lower cap (new connections wait in the kernel backlog), so the proxy holds fewer flows than configured',
      `raise the limit to ${needed} (LimitNOFILE=${needed} in the systemd unit, or ulimit -n ${needed} before tproxy run), or lower maxConnections to ${c.perWorker}`,
    );
  });
}
