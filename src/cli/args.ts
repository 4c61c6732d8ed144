/**
 * The command line of every command: node's parseArgs, plus one rule it lacks. An option that
 * takes one value (a string option that is not `multiple`) given twice is refused, instead of the
 * last one silently winning (`--listen 8000 --listen 8001` would start one listener on 8001, not
 * the two the user may have meant: several listeners are written in a configuration file).
 * Options whose setting is a list are declared `multiple`, and each occurrence adds an item.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TproxyError } from '../core/errors.js';

export function parseCommandLine<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const parsed = parseArgs({ ...config, tokens: true });
  const seen = new Map<string, number>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue;
    const option = config.options?.[token.name];
    if (option?.type !== 'string' || option.multiple === true) continue;
    const count = (seen.get(token.name) ?? 0) + 1;
    seen.set(token.name, count);
    // The values are not repeated: one may hold a secret (a proxy URL's password).
    if (count > 1) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `--${token.name} is given more than once, but takes one value: give it once${token.name === 'listen' ? ' (for several listeners, write them in a configuration file: tproxy config example)' : ''}`, { option: token.name });
    }
  }
  return parsed as ReturnType<typeof parseArgs<T>>;
}
