// Hostile kernel outputs and packet text: damaged copies of real `nft -j list ruleset` and
// iptables-save outputs fed to the model's and the rules' parsers (the nft listing reader as
// well), and packets written with any words: a result or the project's error, never a TypeError.
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseIptablesSave as modelIptablesSave } from '../../../src/core/model/iptables-save.js';
import { parseNftJson as modelNftJson } from '../../../src/core/model/nft-json.js';
import { parsePacketText } from '../../../src/core/model/packet-text.js';
import { parseIptablesDump as rulesIptablesSave } from '../../../src/core/iptables-dump.js';
import { parseNftListing } from '../../../src/core/nft-listing.js';
import { FUZZ, damaged, hostileText, onlyTproxyErrors } from '../../helpers/hostile.js';
import { sourcePath } from '../../helpers/paths.js';

const NFT: unknown = JSON.parse(readFileSync(sourcePath('core/rules/fixtures/rich.nft.json'), 'utf8'));
const IPTABLES = readFileSync(sourcePath('core/rules/fixtures/rich.iptables-save'), 'utf8').split('\n');

describe('hostile parser inputs', () => {
  it('nft JSON: damaged rulesets', () => {
    fc.assert(
      fc.property(damaged(NFT), (json) => {
        onlyTproxyErrors(() => modelNftJson(json));
        onlyTproxyErrors(() => parseNftListing(JSON.stringify(json) ?? ''));
      }),
      FUZZ,
    );
  });

  it('iptables-save: lines dropped, repeated, cut or replaced', () => {
    const edit = fc.tuple(fc.nat(IPTABLES.length), fc.oneof(hostileText, fc.constantFrom('*mangle', 'COMMIT', ':X - [0:0]', '-A', '-A PREROUTING', '-A PREROUTING -j', '-m', '--on-port', '-j TPROXY --on-port', '[1:2]', '[x:y] -A X')), fc.nat(3));
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 6 }), (edits) => {
        const lines = [...IPTABLES];
        for (const [at, text, how] of edits) {
          if (how === 0) lines.splice(at, 1);
          else if (how === 1) lines.splice(at, 0, text);
          else if (how === 2) lines[at] = (lines[at] ?? '').slice(0, text.length % 40);
          else lines[at] = `${lines[at] ?? ''} ${text}`;
        }
        const text = lines.join('\n');
        onlyTproxyErrors(() => modelIptablesSave(text, 4));
        onlyTproxyErrors(() => rulesIptablesSave(text));
      }),
      FUZZ,
    );
  });

  it('packet text: any words in any order', () => {
    const endpoint = fc.tuple(fc.constantFrom('198.51.100.10', '[2001:db8::1]', '2001:db8::1', '', 'x', '300.1.1.1'), fc.stringMatching(/^(0x)?\d{0,12}$/)).map(([a, p]) => `${a}:${p}`);
    const word = fc.oneof(hostileText, endpoint, fc.constantFrom('tcp', 'udp', '->', '198.51.100.10:40000', '203.0.113.20:80', '[2001:db8::1]:80', '2001:db8::1:80', 'iif', 'eth0', 'local', 'syn', 'ack', 'fin', 'rst', 'mark', '0x1', 'ttl', '300', ':', '1.2.3.4:', ':80', '1.2.3.4:99999'));
    // Mostly in the packet's order (PROTO SRC -> DST [words]), so parsing gets past its first checks.
    const ordered = fc.tuple(fc.oneof(fc.constantFrom('tcp', 'udp'), word), fc.oneof(endpoint, word), fc.oneof(fc.constant('->'), word), fc.oneof(endpoint, word), fc.array(word, { maxLength: 8 })).map(([p, a, arrow, b, rest]) => [p, a, arrow, b, ...rest]);
    fc.assert(
      fc.property(fc.oneof(ordered, fc.array(word, { maxLength: 12 })), (words) => {
        onlyTproxyErrors(() => parsePacketText(words.join(' ')));
      }),
      { ...FUZZ, numRuns: 400 },
    );
  });
});
