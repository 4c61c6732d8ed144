import { relayCases } from './relay-cases.js';

relayCases('splice');
