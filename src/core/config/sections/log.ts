/** `log:` what the daemon writes to stderr. */
import { type Infer, oneOf, section } from '../schema.js';

export const LOG = section({
  help: 'Log lines on stderr.',
  fields: {
    level: oneOf(['info', 'debug'], { default: 'info', help: 'debug logs one line per flow.', flag: { name: 'log-level', metavar: 'LEVEL' } }),
    format: oneOf(['text', 'json'], { default: 'text', help: 'Human-readable text or JSON lines.', flag: { name: 'log-format', metavar: 'FORMAT' } }),
  },
});

export type LogSettings = Infer<typeof LOG>;
