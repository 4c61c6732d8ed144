/** The package's version and description (package.json), for --version, logs, metrics and the man page. */
import { readFileSync } from 'node:fs';

interface PackageJson {
  readonly version: string;
  readonly description: string;
}

function packageJson(): PackageJson {
  return JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as PackageJson;
}

export function version(): string {
  return packageJson().version;
}

export function description(): string {
  return packageJson().description;
}
