import { readFileSync } from 'node:fs';

/**
 * Subordinate id ranges from /etc/subuid and /etc/subgid (`name:start:count`
 * per line, the user named by login name or by numeric uid). This is only
 * read to decide the mapping and to word errors; newuidmap/newgidmap check
 * the same files again with their own privilege, so nothing here is trusted.
 */

export interface IdRange {
  /** First host id of the range. */
  start: number;
  count: number;
}

/** The first range of `user` (or of the numeric `id`) in the text of a subuid/subgid file. */
export function parseSubIds(text: string, user: string | undefined, id: number): IdRange | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [owner, start, count] = line.split(':');
    if (owner === undefined || start === undefined || count === undefined) continue;
    if (owner !== user && owner !== String(id)) continue;
    if (!/^\d+$/.test(start) || !/^\d+$/.test(count)) continue;
    const r = { start: Number(start), count: Number(count) };
    if (r.count > 0 && Number.isSafeInteger(r.start + r.count)) return r;
  }
  return undefined;
}

export function readSubIds(file: string, user: string | undefined, id: number): IdRange | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return parseSubIds(text, user, id);
}
