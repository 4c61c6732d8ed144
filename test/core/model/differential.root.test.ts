// The model against the kernel: every scenario builds its world on one lab router, sends real
// packets, and asserts the model predicted what the kernel did (see test/helpers/differential.ts).
// One file, one lab, scenarios in sequence: the data-plane load tests share the two cores.
import { setPriority } from 'node:os';
import { differentialSuite } from '../../helpers/differential-suite.js';
import { SCENARIOS as CHAINS } from './scenarios/chains.js';
import { SCENARIOS as ROUTING } from './scenarios/routing.js';
import { SCENARIOS as TPROXY } from './scenarios/tproxy.js';

// Lowest CPU priority for this file and every process it starts: the data-plane tests that run
// alongside measure concurrency and idle timeouts, and must not starve behind these scenarios.
setPriority(19);

differentialSuite('model vs kernel (root)', [
  ['nftables tproxy: sockets, listeners, TIME_WAIT, divert, routing faults', TPROXY],
  ['chains, priorities, verdicts, matches and statements', CHAINS],
  ['iptables mangle, policy routing and local traffic', ROUTING],
]);
