/** HAProxy in transparent mode on the router: the peer the benchmark compares tproxy with. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, SpawnedProcess } from '../lab/topology.js';

export const HAPROXY_PORT = 8001;

export interface HaproxyOptions {
  readonly splice: boolean;
  readonly threads: number;
  /** HAProxy refuses to start when 2 x maxconn descriptors exceed the hard limit it may raise to. */
  readonly maxconn: number;
}

/**
 * `bind ... transparent` receives TPROXY'd connections; `server orig 0.0.0.0` (no port) connects to
 * each connection's original destination. `splice` makes it splice both ways (`option
 * splice-request` and `splice-response`: `splice-auto` left every byte copied in this lab).
 */
export function haproxyConfig(options: HaproxyOptions): string {
  return `global
  maxconn ${options.maxconn}
  nbthread ${options.threads}
defaults
  mode tcp
  timeout connect 10s
  timeout client 600s
  timeout server 600s
${options.splice ? '  option splice-request\n  option splice-response\n' : ''}frontend tproxy_bench
  bind 0.0.0.0:${HAPROXY_PORT} transparent
  default_backend original_destination
backend original_destination
  server orig 0.0.0.0
`;
}

/** HAProxy on the router, its configuration written under `dir` (the caller removes it; a restart writes the same file again). */
export function startHaproxy(lab: Lab, options: HaproxyOptions, dir: string): SpawnedProcess {
  mkdirSync(join(dir, 'haproxy'), { recursive: true });
  const file = join(dir, 'haproxy', 'haproxy.cfg');
  writeFileSync(file, haproxyConfig(options));
  return lab.spawn('router', ['haproxy', '-db', '-f', file]);
}
