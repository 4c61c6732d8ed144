/**
 * The routed listener of `npm run bench`: the same tproxy as the plain scenario, its listener with a
 * table of 10,000 destination prefixes (a country's list, from a file) and no name routes, so every
 * new connection is decided against the whole table but never waits for a sniff. The bench runs it
 * side by side with the plain listener: the ratio of their new connections per second is what the
 * table costs a listener.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_ADDRESSES } from '../lab/topology.js';
import { random, randomPrefixes } from './route.js';

export const ROUTED_PREFIXES = 10_000;

const u32 = (address: string): number => address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);

/** Whether the IPv4 prefix `a.b.c.d/len` holds `address`. */
function holds(prefix: string, address: string): boolean {
  const [network = '', length = '32'] = prefix.split('/');
  const span = 2 ** (32 - Number(length));
  return Math.floor(u32(network) / span) === Math.floor(u32(address) / span);
}

/** Write the routed listener's configuration (and its prefix list) into `dir`; the config's path. */
export function writeRoutedConfig(dir: string, port: number, interceptPorts: readonly number[]): string {
  // Seeded: the same table every run, less any prefix holding the lab's server, so every flow is
  // looked up against the whole table, misses, and takes the default outbound (direct).
  const prefixes = randomPrefixes(ROUTED_PREFIXES + 10, random(15)).filter((p) => !holds(p, LAB_ADDRESSES.server.ipv4)).slice(0, ROUTED_PREFIXES);
  writeFileSync(join(dir, 'country.txt'), `${prefixes.join('\n')}\n`);
  const config = `listeners:
  - name: routed
    port: ${port}
    families: [4]
    intercept: [${interceptPorts.map((p) => `"tcp:${p}"`).join(', ')}]
lists:
  - { name: country, kind: prefixes, file: country.txt }
routes:
  - { name: lan, outbound: direct, destinations: ["10.0.0.0/8", "192.168.0.0/16"] }
  - { name: country, outbound: reject, destinationLists: [country] }
  - { name: smtp, outbound: reject, ports: [25, 465] }
rules:
  apply: false
`;
  const path = join(dir, 'tproxy.yaml');
  writeFileSync(path, config);
  return path;
}
