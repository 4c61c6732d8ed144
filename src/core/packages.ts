/**
 * Which distribution package holds each binary tproxy drives, and the command that installs it, for
 * the families of distributions people run routers on: Debian/Ubuntu, Fedora/RHEL, Arch, Alpine.
 * The family comes from os-release(5) (ID, then ID_LIKE). Pure: sys/os-release.ts reads the file.
 */

export type DistroFamily = 'debian' | 'fedora' | 'arch' | 'alpine';

export const DISTRO_FAMILIES: readonly DistroFamily[] = ['debian', 'fedora', 'arch', 'alpine'];

export interface OsRelease {
  readonly id: string;
  /** ID_LIKE: the distributions it derives from, closest first. */
  readonly idLike: readonly string[];
}

/** The ID and ID_LIKE of an os-release file (KEY=value lines, values optionally quoted). */
export function parseOsRelease(text: string): OsRelease {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const raw = (m[2] ?? '').trim();
    const unquoted = /^(["']).*\1$/.test(raw) ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    values.set(m[1] as string, unquoted);
  }
  return { id: (values.get('ID') ?? 'linux').toLowerCase(), idLike: (values.get('ID_LIKE') ?? '').toLowerCase().split(/\s+/).filter((w) => w !== '') };
}

const FAMILY_OF: Readonly<Record<string, DistroFamily>> = {
  debian: 'debian',
  ubuntu: 'debian',
  fedora: 'fedora',
  rhel: 'fedora',
  centos: 'fedora',
  arch: 'arch',
  alpine: 'alpine',
};

/** The family of a distribution, undefined when it is none of the four. */
export function distroFamily(os: OsRelease | undefined): DistroFamily | undefined {
  if (!os) return undefined;
  for (const id of [os.id, ...os.idLike]) {
    const family = FAMILY_OF[id];
    if (family) return family;
  }
  return undefined;
}

const INSTALL_COMMAND: Readonly<Record<DistroFamily, string>> = { debian: 'apt-get install', fedora: 'dnf install', arch: 'pacman -S', alpine: 'apk add' };
const FAMILY_NAME: Readonly<Record<DistroFamily, string>> = { debian: 'Debian/Ubuntu', fedora: 'Fedora/RHEL', arch: 'Arch', alpine: 'Alpine' };

const same = (name: string): Record<DistroFamily, string> => ({ debian: name, fedora: name, arch: name, alpine: name });
const IPROUTE: Record<DistroFamily, string> = { ...same('iproute2'), fedora: 'iproute' };
const IPTABLES: Record<DistroFamily, string> = { ...same('iptables'), fedora: 'iptables-nft' };

/** The package that holds each binary, per family. */
export const PACKAGES: Readonly<Record<string, Readonly<Record<DistroFamily, string>>>> = {
  nft: same('nftables'),
  ip: IPROUTE,
  ss: IPROUTE,
  'iptables-restore': IPTABLES,
  'iptables-nft-restore': IPTABLES,
  'iptables-legacy-restore': { ...same('iptables'), fedora: 'iptables-legacy' },
};

function installFor(family: DistroFamily, binaries: readonly string[]): string | undefined {
  const packages = [...new Set(binaries.map((b) => PACKAGES[b]?.[family]).filter((p) => p !== undefined))];
  return packages.length === 0 ? undefined : `${INSTALL_COMMAND[family]} ${packages.join(' ')}`;
}

/**
 * How to install the packages that hold `binaries`: the command of this host's family, or of every
 * family when it is unknown. Undefined when no binary is one of ours.
 */
export function installCommand(binaries: readonly string[], family: DistroFamily | undefined): string | undefined {
  if (family) return installFor(family, binaries);
  const each = DISTRO_FAMILIES.map((f) => {
    const command = installFor(f, binaries);
    return command && `${command} (${FAMILY_NAME[f]})`;
  }).filter((c) => c !== undefined);
  return each.length === 0 ? undefined : each.join(', ');
}
