/**
 * Values echoed into messages: quoted like JSON, and bounded, so a 20 MB config value or a
 * hostile line cannot turn one error into 20 MB of output. Pure.
 */

/** How many characters of a value a message quotes at most. */
export const QUOTE_MAX_CHARS = 200;

/** `"abc"`, or `"abc…" (20000000 characters)` when the value is longer than `max`. */
export function quoted(text: string, max = QUOTE_MAX_CHARS): string {
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(`${text.slice(0, max)}…`)} (${text.length} characters)`;
}
