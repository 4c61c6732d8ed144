/**
 * Tell when a file's content changes on disk, however it was changed: written in place, replaced
 * by a rename (editors, `install`), or reached through a symlink that was swapped (a Kubernetes
 * ConfigMap volume: `config.yaml -> ..data/config.yaml`, `..data -> ..2026_12_07_01_02_03.1234`,
 * and an update renames a new `..data` over the old one atomically).
 *
 * inotify watches the directory the path is in (where a ConfigMap swaps `..data`) and the directory
 * of the file it resolves to now (where an in-place edit happens); every event there, after a short
 * quiet time, re-reads the file, and only content that differs from the last seen is reported. A
 * file that cannot be read for a moment (mid-swap) is read again at the next event.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';

export interface FileWatch {
  close(): void;
}

export interface FileWatchOptions {
  /** Quiet time after the last event before the file is read (an update is several events). */
  readonly settleMs?: number;
  readonly onError?: (error: Error) => void;
}

const digest = (content: Buffer): string => createHash('sha256').update(content).digest('hex');

export async function watchFileContent(file: string, onChange: () => void, options: FileWatchOptions = {}): Promise<FileWatch> {
  const settleMs = options.settleMs ?? 100;
  const absolute = path.resolve(file);
  let last = digest(await readFile(absolute));
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const watchDirectory = (dir: string): void => {
    if (watchers.has(dir) || closed) return;
    try {
      const watcher = watch(dir, { persistent: false }, () => schedule());
      watcher.on('error', (error) => options.onError?.(error));
      watchers.set(dir, watcher);
    } catch (error) {
      options.onError?.(error as Error);
    }
  };
  // The directory of the path, and of the file the path resolves to now (it moves with a swap).
  const follow = async (): Promise<void> => {
    try {
      const dirs = new Set([path.dirname(absolute), path.dirname(await realpath(absolute))]);
      for (const dir of dirs) watchDirectory(dir);
      for (const [dir, watcher] of watchers) {
        if (!dirs.has(dir)) {
          watcher.close();
          watchers.delete(dir);
        }
      }
    } catch {
      // Mid-swap: the next event follows again.
    }
  };
  const check = async (): Promise<void> => {
    let content: Buffer;
    try {
      content = await readFile(absolute);
    } catch {
      return;
    }
    await follow();
    const now = digest(content);
    if (now === last || closed) return;
    last = now;
    onChange();
  };
  function schedule(): void {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), settleMs);
  }

  watchDirectory(path.dirname(absolute));
  await follow();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
