/** Commands that are part of the command line but not built yet: they say so and exit non-zero. */
import { TproxyError } from '../../core/errors.js';
import type { Command } from '../io.js';

function planned(name: string, summary: string, what: string): Command {
  const usage = `Usage: tproxy ${name} [options]\n\n${summary}.\nNot built yet: ${what}\n`;
  return {
    name,
    summary: `${summary} (not built yet)`,
    usage,
    run(argv, io) {
      if (argv.includes('--help') || argv.includes('-h')) {
        io.out(usage);
        return Promise.resolve(0);
      }
      return Promise.reject(new TproxyError('ERR_NOT_IMPLEMENTED', `tproxy ${name} is not built yet: ${what}`, { command: name }));
    },
  };
}

export const plannedCommands: Command[] = [
  planned('doctor', 'find what stops TPROXY from working on this host, and how to fix it', 'it needs the model and the host checks'),
];
