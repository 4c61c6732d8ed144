/** Thread entry of the uring engine (SpliceRelay starts this file for `--tcp-engine uring`). */
import { runEngineThread } from '../engine-thread.js';
import { UringEngine } from './engine.js';

runEngineThread((config, post) => new UringEngine(config, post));
