/** `admin:` the local admin socket that `tproxy status` asks. */
import { type Infer, optional, refused, section, text } from '../schema.js';

/** sun_path holds 108 bytes, the terminating NUL included. */
const UNIX_PATH_MAX = 108;

export const ADMIN = section({
  help: 'The admin socket (unix, mode 0600) that tproxy status asks; off unless socket is set.',
  fields: {
    socket: optional(
      text({
        type: 'path',
        allowed: 'an absolute path, e.g. /run/tproxy/admin.sock',
        example: '/run/tproxy/admin.sock',
        help: 'Answer tproxy status on this unix socket (owner-only); a stale file is removed, one a running daemon answers on is refused.',
        flag: { name: 'admin-socket', metavar: 'PATH' },
        parse: (t) => (t.startsWith('/') && new TextEncoder().encode(t).length < UNIX_PATH_MAX ? t : refused(`use an absolute path shorter than ${UNIX_PATH_MAX} bytes (the unix socket limit)`)),
      }),
    ),
  },
});

export type AdminSettings = Infer<typeof ADMIN>;
