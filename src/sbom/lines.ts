/**
 * The '\n'-separated lines of `text`, one at a time, as `text.split('\n')`
 * gives them. A package database may be 64 MiB of short lines: split would
 * hold tens of millions of strings (and an array of them) at once, where this
 * holds one.
 */
export function* lines(text: string): Generator<string> {
  for (let start = 0; start <= text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    yield text.slice(start, end);
    start = end + 1;
  }
}
