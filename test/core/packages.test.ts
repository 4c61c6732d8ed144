import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { distroFamily, installCommand, parseOsRelease } from '../../src/core/packages.js';

const family = (text: string): string | undefined => distroFamily(parseOsRelease(text));

describe('distribution packages', () => {
  it('reads ID and ID_LIKE from os-release, quoted or not', () => {
    assert.deepEqual(parseOsRelease('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n# comment\n'), { id: 'rocky', idLike: ['rhel', 'centos', 'fedora'] });
    assert.deepEqual(parseOsRelease("ID=debian\nVERSION_ID='12'\n"), { id: 'debian', idLike: [] });
    assert.deepEqual(parseOsRelease(''), { id: 'linux', idLike: [] });
  });

  it('knows the family of a distribution by its ID, then by what it is like', () => {
    assert.equal(family('ID=debian'), 'debian');
    assert.equal(family('ID=ubuntu\nID_LIKE=debian'), 'debian');
    assert.equal(family('ID=linuxmint\nID_LIKE="ubuntu debian"'), 'debian');
    assert.equal(family('ID=fedora'), 'fedora');
    assert.equal(family('ID="almalinux"\nID_LIKE="rhel centos fedora"'), 'fedora');
    assert.equal(family('ID=arch'), 'arch');
    assert.equal(family('ID=manjaro\nID_LIKE=arch'), 'arch');
    assert.equal(family('ID=alpine'), 'alpine');
    assert.equal(family('ID=opensuse-tumbleweed\nID_LIKE="opensuse suse"'), undefined);
    assert.equal(distroFamily(undefined), undefined);
  });

  it('names the packages and the install command of each family', () => {
    assert.equal(installCommand(['ip', 'nft'], 'debian'), 'apt-get install iproute2 nftables');
    assert.equal(installCommand(['ip', 'nft'], 'fedora'), 'dnf install iproute nftables');
    assert.equal(installCommand(['ip', 'nft'], 'arch'), 'pacman -S iproute2 nftables');
    assert.equal(installCommand(['ip', 'nft'], 'alpine'), 'apk add iproute2 nftables');
    assert.equal(installCommand(['ip', 'ss'], 'debian'), 'apt-get install iproute2', 'one package once');
    assert.equal(installCommand(['iptables-legacy-restore'], 'fedora'), 'dnf install iptables-legacy');
    assert.equal(installCommand(['iptables-nft-restore'], 'fedora'), 'dnf install iptables-nft');
  });

  it('lists every family when the host is none of them, and nothing for a binary that is not ours', () => {
    assert.equal(installCommand(['nft'], undefined), 'apt-get install nftables (Debian/Ubuntu), dnf install nftables (Fedora/RHEL), pacman -S nftables (Arch), apk add nftables (Alpine)');
    assert.equal(installCommand(['frobnicate'], 'debian'), undefined);
    assert.equal(installCommand(['frobnicate'], undefined), undefined);
  });
});
