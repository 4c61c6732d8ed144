/** Thread entry of the splice engine (SpliceRelay starts this file as a worker thread). */
import { runEngineThread } from '../engine-thread.js';
import { SpliceEngine } from './engine.js';

runEngineThread((config, post) => new SpliceEngine(config, post));
