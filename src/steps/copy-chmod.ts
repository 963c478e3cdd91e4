import { KilnError } from '../errors/index.js';

/** A parsed `--chmod`: applies to one entry's current mode and type. */
export type ChmodFn = (mode: number, isDir: boolean) => number;

/**
 * `--chmod` as BuildKit accepts it: octal (`755`, `0644`) or symbolic clauses
 * (`u+x,g-w`, `a=rX`, `+x`; who omitted means all, with no umask applied).
 */
export function parseChmod(spec: string): ChmodFn {
  // BuildKit's frontend reads any run of octal digits (`00755` too) and refuses a value past 07777
  if (/^[0-7]+$/.test(spec)) {
    const m = parseInt(spec, 8);
    if (m > 0o7777) throw new KilnError('USAGE', `invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777`);
    return () => m;
  }
  const clauses = spec.split(',').map((c) => parseClause(c, spec));
  // X looks at the mode the file had before any clause, as BSD setmode (BuildKit's) does
  return (mode, isDir) => clauses.reduce((m, apply) => apply(m, isDir, mode & 0o7777), mode & 0o7777);
}

type ClauseFn = (mode: number, isDir: boolean, original: number) => number;

const WHO: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o0007, a: 0o6777 };

function parseClause(clause: string, spec: string): ClauseFn {
  const m = /^([ugoa]*)((?:[-+=][rwxXst]*)+)$/.exec(clause);
  if (!m) throw new KilnError('USAGE', `invalid --chmod value "${spec}" (want octal such as 0755 or symbolic such as u+x,g-w)`);
  const whoMask = (m[1] === '' ? 'a' : m[1]!).split('').reduce((acc, w) => acc | WHO[w]!, 0);
  const ops = [...m[2]!.matchAll(/([-+=])([rwxXst]*)/g)].map((o) => ({ op: o[1]!, perms: o[2]! }));
  return (mode, isDir, original) => {
    let cur = mode;
    for (const { op, perms } of ops) {
      let bits = 0;
      for (const p of perms) {
        if (p === 'r') bits |= 0o444;
        else if (p === 'w') bits |= 0o222;
        else if (p === 'x') bits |= 0o111;
        else if (p === 'X') {
          if (isDir || (original & 0o111) !== 0) bits |= 0o111;
        } else if (p === 's') bits |= 0o6000;
        else if (p === 't') bits |= 0o1000;
      }
      bits &= whoMask | (perms.includes('t') ? 0o1000 : 0);
      if (op === '+') cur |= bits;
      else if (op === '-') cur &= ~bits;
      else cur = (cur & ~(whoMask & 0o7777)) | bits;
    }
    return cur & 0o7777;
  };
}
