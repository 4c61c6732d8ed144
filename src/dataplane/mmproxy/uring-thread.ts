/** Entry of an mmproxy engine thread on io_uring (started by splice-relay.ts for `--tcp-engine uring`). */
import { runEngineThread } from '../tcp/engine-thread.js';
import { MmproxyUringEngine } from './uring-engine.js';
import type { FromMmproxyEngine, MmproxyEngineConfig, ToMmproxyEngine } from './splice-protocol.js';

runEngineThread<MmproxyEngineConfig, ToMmproxyEngine, FromMmproxyEngine>((config, post) => new MmproxyUringEngine(config, post), 'mmproxyEngine');
