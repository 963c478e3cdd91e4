import type { CheckDirective } from './instructions.js';

/**
 * The one reader of check options, `skip=A,B;error=true`, for the
 * `# check=` directive and the `BUILDKIT_DOCKERFILE_CHECK` build argument.
 * `invalid` decides what a malformed part means: the directive throws, the
 * build argument ignores it (the part is then skipped, and a bad `error=`
 * value leaves warnings as warnings).
 */
export function parseCheckOptions(value: string, invalid: (message: string, hint: string) => void): CheckDirective {
  const out: CheckDirective = { skip: [], error: false };
  for (const part of value.split(';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) {
      invalid(`invalid check directive "${p}"`, 'use # check=skip=Rule1,Rule2;error=true');
      continue;
    }
    const k = p.slice(0, eq).trim().toLowerCase();
    const v = p.slice(eq + 1).trim();
    if (k === 'skip') {
      const names = v.split(',').map((s) => s.trim()).filter(Boolean);
      out.skip = names.some((n) => n.toLowerCase() === 'all') ? 'all' : names;
    } else if (k === 'error') {
      const b = v.toLowerCase();
      if (b !== 'true' && b !== 'false') invalid(`invalid value "${v}" for check directive error`, 'expected true or false');
      out.error = b === 'true';
    } else if (k !== 'experimental') {
      // `experimental=` selects BuildKit's experimental rules; kiln has none, so it is accepted and ignored.
      invalid(`unknown check directive option "${k}"`, 'expected skip or error');
    }
  }
  return out;
}
