/**
 * The configuration from the command line: `--config FILE` plus the flags the schema defines
 * (flags override the file). `run` takes every flag; `rules` the ones that shape the kernel rules.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../core/config/document.js';
import type { CliOption } from '../core/cli-options.js';
import { type ConfigFlag, configFlags, flagOption, type FlagValues } from '../core/config/flags.js';
import { rulesConfigOf } from '../core/config/rules-of.js';
import type { TproxyConfig } from '../core/config/tproxy-config.js';
import { TproxyError } from '../core/errors.js';
import type { RulesConfig } from '../core/rules/config.js';
import { chooseBackend, type BackendChoice, type BackendName } from '../control/backend.js';
import { findExecutable, missingCommandError } from '../sys/exec.js';

/** Listener settings that shape the rules (the rest only matter to the proxy). */
const RULE_LISTENER_SETTINGS = ['port', 'addresses', 'families', 'intercept', 'upstreamMark'];

/** The flags of `tproxy rules`: the rules section and what the rules need of a listener. */
export const RULES_FLAGS: readonly ConfigFlag[] = configFlags().filter(({ path }) => path[0] === 'rules' || (path[0] === 'listeners' && RULE_LISTENER_SETTINGS.includes(path[2] ?? '')));

export const CONFIG_OPTION: CliOption = { name: 'config', metavar: 'FILE', help: 'configuration file (YAML; `tproxy config example` prints one); flags override its settings' };

/** The options of a selection: the flags, then --config. */
export function selectionOptions(flags: readonly ConfigFlag[]): CliOption[] {
  return [...flags.map(flagOption), CONFIG_OPTION];
}

export type SelectionValues = FlagValues & { readonly config?: string | boolean | readonly string[] };

/** Read the file (if any) and validate it with the flags laid over it. */
export async function configFrom(values: SelectionValues, read: (file: string) => Promise<string> = (f) => readFile(f, 'utf8')): Promise<TproxyConfig> {
  const file = typeof values.config === 'string' ? values.config : undefined;
  let text: string | undefined;
  if (file !== undefined) {
    try {
      text = await read(file);
    } catch (error) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { file }, { cause: error });
    }
  }
  return loadConfig(file === undefined ? {} : { file, text: text ?? '', readFile: listFileReader(file) }, { values });
}

/** Reads the list files a configuration names, relative to the configuration file's folder. */
export function listFileReader(configFile: string): (file: string) => string {
  return (file) => {
    try {
      return readFileSync(path.resolve(path.dirname(configFile), file), 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? String(error)), { cause: error });
    }
  };
}

/** The rules configuration of flags alone (no file). */
export function rulesConfigFrom(values: FlagValues): RulesConfig {
  return rulesConfigOf(loadConfig({}, { values }));
}

/** The backend to use on this host (nft if installed, unless forced), and `ip`, which every backend needs. */
export function backendFrom(choice: BackendChoice, has: (binary: string) => boolean = (b) => findExecutable(b) !== undefined): BackendName {
  const backend = chooseBackend(choice, has);
  if (!has('ip')) throw missingCommandError('ip');
  return backend;
}
