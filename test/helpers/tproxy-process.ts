/** `tproxy ARGS...` as a child process in this (root) namespace: an admin socket is a file, reachable from here. */
import { spawn } from 'node:child_process';
import { BIN } from './paths.js';

export interface TproxyProcessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runTproxy(argv: readonly string[]): Promise<TproxyProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
