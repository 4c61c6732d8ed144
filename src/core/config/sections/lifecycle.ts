/** `shutdown:` and `reload:` how long flows may go on when their listener stops. */
import { type Infer, boolean, milliseconds, section } from '../schema.js';

export const SHUTDOWN = section({
  help: 'Stopping on SIGTERM or SIGINT.',
  fields: {
    graceMs: milliseconds({ min: 0, default: 5000, help: 'Listeners stop accepting at once; flows may finish this long, then the rest are reset.', flag: { name: 'grace-ms', metavar: 'N' } }),
  },
});

export const RELOAD = section({
  help: 'Reloading the file on SIGHUP (or when it changes on disk, with watch).',
  fields: {
    watch: boolean({ default: false, help: 'Reload as on SIGHUP when the --config file changes on disk, a symlink swapped over it included (a Kubernetes ConfigMap update).', flag: { name: 'watch-config' } }),
    drainMs: milliseconds({ min: 0, default: 600_000, help: 'Flows of a listener that a reload removed or changed may finish this long, then the rest are reset.' }),
  },
});

export type ShutdownSettings = Infer<typeof SHUTDOWN>;
export type ReloadSettings = Infer<typeof RELOAD>;
