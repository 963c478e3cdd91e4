/** One `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  /** Lower-cased: 'basic', 'bearer'. */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses every challenge in a `WWW-Authenticate` value (RFC 7235 auth-params
 * with quoted strings; a comma inside quotes does not split).
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    let current: Challenge | undefined;
    const skipWs = (): void => {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    };
    while (i < s.length) {
      skipWs();
      const tokStart = i;
      while (i < s.length && /[^\s=,]/.test(s[i]!)) i++;
      const token = s.slice(tokStart, i);
      if (!token) break;
      let j = i;
      while (j < s.length && s[j] === ' ') j++;
      if (s[j] === '=') {
        i = j + 1;
        while (i < s.length && s[i] === ' ') i++;
        let val = '';
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            val += s[i];
            i++;
          }
          i++;
        } else {
          const vs = i;
          while (i < s.length && s[i] !== ',') i++;
          val = s.slice(vs, i).trim();
        }
        if (current) current.params[token.toLowerCase()] = val;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}
