import { relayCases } from './relay-cases.js';

relayCases('stream');
