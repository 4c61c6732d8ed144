import { relayCases } from './relay-cases.js';

relayCases('uring');
