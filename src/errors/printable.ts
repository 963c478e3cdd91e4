/**
 * Text from images, registries and RUN output reaches error messages and the
 * terminal. A hostile one could move the cursor, rewrite earlier lines, set
 * the window title or reverse text direction (escape sequences, C1 controls,
 * bidi overrides), or bury the message in megabytes. `printable` makes such
 * text one visible line of bounded length: tabs and line breaks become
 * spaces, other controls and bidi formatting characters are shown escaped.
 */

/** Longest message kept (characters); the rest becomes "…". */
export const MAX_MESSAGE_LENGTH = 4000;

// C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and the LRM/RLM/ALM marks
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escape(ch: string): string {
  if (ch === '\t' || ch === '\n' || ch === '\r') return ' ';
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

export function printable(text: string, maxLength: number = MAX_MESSAGE_LENGTH): string {
  // cut first (with room for escapes) so a huge input costs nothing more
  const clipped = text.length > maxLength * 4 ? text.slice(0, maxLength * 4) : text;
  const clean = clipped.replace(UNSAFE, escape);
  if (clean.length <= maxLength && clipped.length === text.length) return clean;
  return `${clean.slice(0, Math.max(0, maxLength - 1))}…`;
}

// What JSON.stringify leaves raw but a terminal may still act on: DEL, C1 controls, bidi formatting.
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON for a terminal: the same values as JSON.stringify (C0 controls are
 * already escaped by it), with DEL, C1 controls and bidi characters written
 * as \u escapes too, so image-supplied strings cannot act on the terminal.
 */
export function printableJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(JSON_UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
