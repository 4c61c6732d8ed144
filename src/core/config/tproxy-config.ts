/**
 * The whole configuration of `tproxy run`: one entry per section. A new section is one entry in
 * SECTIONS (its settings described in its own file under sections/); validation, flags, the example
 * file and the configuration reference (docs/configuration.md) follow from it.
 */
import { LISTENERS, checkListeners } from './sections/listeners.js';
import { RELOAD, SHUTDOWN } from './sections/lifecycle.js';
import { ADMIN } from './sections/admin.js';
import { DASHBOARD } from './sections/dashboard.js';
import { LOG } from './sections/log.js';
import { METRICS } from './sections/metrics.js';
import { HEALTH } from './sections/health.js';
import { MMPROXY, checkMmproxy } from './sections/mmproxy.js';
import { RULES } from './sections/rules.js';
import { TCP } from './sections/tcp.js';
import { UDP } from './sections/udp.js';
import { OUTBOUNDS } from './sections/outbounds.js';
import { LISTS } from './sections/lists.js';
import { ROUTES } from './sections/routes.js';
import { checkRouting } from './routing-of.js';
import { type Infer, section } from './schema.js';

export const SECTIONS = {
  listeners: LISTENERS,
  outbounds: OUTBOUNDS,
  lists: LISTS,
  routes: ROUTES,
  rules: RULES,
  tcp: TCP,
  udp: UDP,
  log: LOG,
  shutdown: SHUTDOWN,
  reload: RELOAD,
  metrics: METRICS,
  health: HEALTH,
  admin: ADMIN,
  dashboard: DASHBOARD,
  mmproxy: MMPROXY,
} as const;

export const CONFIG_SCHEMA = section({
  help: 'tproxy configuration',
  fields: SECTIONS,
  check(config, _path, issues) {
    if (config.listeners.length === 0 && config.mmproxy.length === 0) issues.push({ path: ['listeners'], message: 'nothing to run: add a listener (or leave listeners out for the default one), or an mmproxy entry' });
    checkListeners(config.listeners, issues);
    checkRouting(config, issues);
    checkMmproxy(config.mmproxy, issues);
  },
});

export type TproxyConfig = Infer<typeof CONFIG_SCHEMA>;
