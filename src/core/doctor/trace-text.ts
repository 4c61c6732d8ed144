/** An explanation's trace as text lines for a finding. Pure. */
import type { Explanation } from '../model/explain.js';
import { describeOutcome } from '../model/format.js';

export function formatTrace(e: Explanation): string[] {
  const lines = e.trace.map((s) => `${s.matched === false ? '- ' : s.matched === true ? '+ ' : ''}${s.text}`);
  return [...lines, `result: ${describeOutcome(e.outcome, e)}`];
}
