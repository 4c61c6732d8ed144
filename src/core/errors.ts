/**
 * The one error type of the project. Every failure a user can meet carries a stable `code`
 * (for programs), a message that says what to fix (for people), and the details that explain it.
 */

export type TproxyErrorCode =
  | 'ERR_SYSCALL' // a socket call failed (details: call, errno)
  | 'ERR_PRIVILEGE' // missing root / CAP_NET_ADMIN
  | 'ERR_ADDRESS_IN_USE' // a port or address is already taken
  | 'ERR_COMMAND_MISSING' // a binary we drive (nft, ip) is not installed
  | 'ERR_COMMAND_FAILED' // a binary we drive exited non-zero
  | 'ERR_KERNEL_FEATURE' // the kernel lacks something we need (tproxy, socket match, ...)
  | 'ERR_INVALID_ARGUMENT' // bad input: flag, config value, address
  | 'ERR_CONFLICT' // a mark, route table, rule priority or table name we would use is already used on the host
  | 'ERR_TIMEOUT' // something did not happen in time
  | 'ERR_RESOURCE_EXHAUSTED' // out of descriptors (the process's budget or the kernel's EMFILE / ENFILE)
  | 'ERR_NOT_RUNNING' // no daemon answers on the admin socket
  | 'ERR_NETNS' // network-namespace lab failure
  | 'ERR_PROXY_BYPASSED' // traffic reached its destination without passing through the proxy
  | 'ERR_DEMO_FAILED'; // a step of the demo did not produce what it must

export interface TproxyErrorDetails {
  /** The system call or command that failed, e.g. `setsockopt(IP_TRANSPARENT)` or `nft -f -`. */
  readonly call?: string;
  /** errno name, e.g. `EPERM`. */
  readonly errno?: string;
  /** Numeric errno. */
  readonly errnoNumber?: number;
  /** First line of the stderr of a failed command. */
  readonly stderr?: string;
  /** Exit code of a failed command. */
  readonly exitCode?: number | null;
  /** Free-form context (addresses, ports, names). */
  readonly [key: string]: unknown;
}

export class TproxyError extends Error {
  override readonly name = 'TproxyError';
  readonly code: TproxyErrorCode;
  readonly details: TproxyErrorDetails;

  constructor(code: TproxyErrorCode, message: string, details: TproxyErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  /** A plain object for JSON output and logs. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

/** The errno name (or code) behind a failure, for counters keyed by reason. */
export function errnoOf(error: unknown): string {
  if (error instanceof TproxyError) return String(error.details.errno ?? error.code);
  return (error as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}

export function isTproxyError(value: unknown, code?: TproxyErrorCode): value is TproxyError {
  return value instanceof TproxyError && (code === undefined || value.code === code);
}
