/** `tproxy completion bash|zsh|fish`: the shell completion script, from the commands' option lists. */
import { quoted } from '../../core/quote.js';
import { HELP_OPTION } from '../../core/cli-options.js';
import { TproxyError } from '../../core/errors.js';
import { completionScript, SHELLS, type Shell } from '../completion.js';
import { type Command, defineCommand } from '../io.js';

const OPTIONS = [HELP_OPTION] as const;

const SYNOPSIS = ['tproxy completion bash|zsh|fish'];

const DESCRIPTION = `Print the shell completion script: commands, their actions, options, and the values an option
accepts when they are a fixed set. Load it in the current shell, or save it where the shell looks:
  bash   source <(tproxy completion bash)
         tproxy completion bash > /etc/bash_completion.d/tproxy
  zsh    source <(tproxy completion zsh)   (after compinit)
         tproxy completion zsh > "\${fpath[1]}/_tproxy"
  fish   tproxy completion fish | source
         tproxy completion fish > ~/.config/fish/completions/tproxy.fish
`;

function isShell(word: string | undefined): word is Shell {
  return (SHELLS as readonly (string | undefined)[]).includes(word);
}

/** `commands`: every command of tproxy (this one included), read when the script is printed. */
export function completionCommand(commands: () => readonly Command[]): Command {
  return defineCommand({
    name: 'completion',
    summary: 'print the shell completion script (bash, zsh or fish)',
    synopsis: SYNOPSIS,
    description: DESCRIPTION,
    options: OPTIONS,
    actions: SHELLS,
    operands: true,
    run({ positionals }, io): Promise<number> {
      const [shell, ...rest] = positionals;
      if (!isShell(shell) || rest.length > 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy completion: expected one of ${SHELLS.join(', ')}${positionals.length > 0 ? `, got ${quoted(positionals.join(' '))}` : ''}`);
      io.out(completionScript(shell, commands()));
      return Promise.resolve(0);
    },
  });
}
