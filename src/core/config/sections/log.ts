/** `log:` what the daemon writes to stderr. */
import { type Infer, oneOf, section } from '../schema.js';

/** Most severe first: a level shows itself and everything before it. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG = section({
  help: 'Log lines on stderr.',
  fields: {
    level: oneOf(LOG_LEVELS, { default: 'info', help: 'debug adds the lines of every flow (switched by a reload without restarting anything); error, warn and info drop what is less severe.', flag: { name: 'log-level', metavar: 'LEVEL' } }),
    format: oneOf(['text', 'json'], { default: 'text', help: 'Human-readable text or JSON lines.', flag: { name: 'log-format', metavar: 'FORMAT' } }),
  },
});

export type LogSettings = Infer<typeof LOG>;
