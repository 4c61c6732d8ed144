/** This host's distribution, from os-release(5), for install advice (core/packages.ts). */
import { readFileSync } from 'node:fs';
import { type DistroFamily, distroFamily, parseOsRelease } from '../core/packages.js';

const OS_RELEASE_PATHS = ['/etc/os-release', '/usr/lib/os-release'];

/** The family of the distribution the first readable file describes; undefined when none is readable or known. */
export function readDistroFamily(paths: readonly string[] = OS_RELEASE_PATHS): DistroFamily | undefined {
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    return distroFamily(parseOsRelease(text));
  }
  return undefined;
}

let cached: { family: DistroFamily | undefined } | undefined;

/** This host's family, read once. */
export function hostDistroFamily(): DistroFamily | undefined {
  cached ??= { family: readDistroFamily() };
  return cached.family;
}
