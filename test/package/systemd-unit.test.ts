// The systemd unit (packaging/tproxy.service), read as a file: it runs as a dynamic user holding
// exactly the capabilities tproxy needs, the same in the ambient and the bounding set (a capability
// missing from either is not held), with CAP_SYS_RESOURCE for the splice engine's pipes and its
// reason written beside it; docs/operations.md names the same set.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const read = (path: string): string => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

/** The values of `key=` in the unit's [Service] section, in order (later lines add to a list). */
function service(text: string, key: string): string[] {
  const section = text.split(/^\[Service\]$/m)[1]?.split(/^\[/m)[0] ?? '';
  return section
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1).trim());
}

const words = (values: readonly string[]): string[] => values.flatMap((v) => v.split(/\s+/).filter(Boolean)).sort();

describe('systemd unit', () => {
  const unit = read('packaging/tproxy.service');
  const expected = ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_RESOURCE'];

  it('holds CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and CAP_SYS_RESOURCE as ambient capabilities, bounded to exactly those', () => {
    assert.deepEqual(words(service(unit, 'AmbientCapabilities')), expected);
    assert.deepEqual(words(service(unit, 'CapabilityBoundingSet')), expected);
    assert.deepEqual(service(unit, 'DynamicUser'), ['yes']);
    assert.deepEqual(service(unit, 'NoNewPrivileges'), ['yes']);
  });

  it('says why it holds CAP_SYS_RESOURCE, and how to do without it', () => {
    const comments = unit
      .split('\n')
      .filter((l) => l.startsWith('#'))
      .join('\n');
    assert.match(comments, /CAP_SYS_RESOURCE: the splice engine's pipes/);
    assert.match(comments, /fs\/pipe-user-pages-soft/);
    assert.match(comments, /remove it from both\s+# lines and raise the sysctl instead/);
  });

  it('is described with the same capabilities in docs/operations.md', () => {
    const docs = read('docs/operations.md');
    assert.match(docs, /`CapabilityBoundingSet=CAP_NET_ADMIN\s+CAP_NET_BIND_SERVICE CAP_SYS_RESOURCE`/);
    assert.match(docs, /\*\*CAP_SYS_RESOURCE, for the pipes\.\*\*/);
  });
});
