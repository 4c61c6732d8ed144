/** Entry of an mmproxy engine thread (started by splice-relay.ts). */
import { runEngineThread } from '../tcp/engine-thread.js';
import { MmproxySpliceEngine } from './splice-engine.js';
import type { FromMmproxyEngine, MmproxyEngineConfig, ToMmproxyEngine } from './splice-protocol.js';

runEngineThread<MmproxyEngineConfig, ToMmproxyEngine, FromMmproxyEngine>((config, post) => new MmproxySpliceEngine(config, post), 'mmproxyEngine');
