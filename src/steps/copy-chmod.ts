import { KilnError } from '../errors/index.js';

/** A parsed `--chmod`: applies to one entry's current mode and type. */
export type ChmodFn = (mode: number, isDir: boolean) => number;

/**
 * `--chmod` as BuildKit accepts it: octal (`755`, `0644`) or symbolic clauses
 * (`u+x,g-w`, `a=rX`, `+x`, `g=u`; who omitted means all, with no umask applied).
 * Symbolic modes follow BSD `setmode(3)`, which BuildKit uses through a Go
 * translation: the clauses become a list of commands (clear bits, set bits,
 * set execute where `X` allows, copy one class's bits to others), consecutive
 * clear/set/X commands merged as setmode merges them, applied in order.
 */
export function parseChmod(spec: string): ChmodFn {
  // BuildKit's frontend reads any run of octal digits (`00755` too) and refuses a value past 07777
  if (/^[0-7]+$/.test(spec)) {
    const m = parseInt(spec, 8);
    if (m > 0o7777) throw new KilnError('USAGE', `invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777`);
    return () => m;
  }
  const cmds = merged(parseSymbolic(spec));
  // X looks at the mode the file had before any clause
  return (mode, isDir) => apply(cmds, mode & 0o7777, isDir);
}

const SUID = 0o4000;
const SGID = 0o2000;
const STICKY = 0o1000;
const RWXU = 0o700;
const RWXG = 0o070;
const RWXO = 0o007;
const STANDARD = SUID | SGID | RWXU | RWXG | RWXO;

/**
 * A setmode command: `-` clears `bits`, `+` sets them, `X` sets them when the entry is a directory
 * or executable by anyone; `u`/`g`/`o` copy that class's permission bits into the target classes
 * (`to`, as rwx masks), clearing them first and/or setting them.
 */
type Cmd = { cmd: '-' | '+' | 'X'; bits: number } | { cmd: 'u' | 'g' | 'o'; to: number; clear: boolean; set: boolean };

function syntax(spec: string): KilnError {
  return new KilnError('USAGE', `invalid --chmod value "${spec}" (want octal such as 0755 or symbolic such as u+x,g-w)`);
}

/** `op` with bits `arg` for the classes in `who` (all when 0: no umask applies). */
function add(cmds: Cmd[], op: '=' | '+' | '-' | 'X', who: number, arg: number): void {
  if (op === '=') cmds.push({ cmd: '-', bits: who !== 0 ? who : STANDARD });
  cmds.push({ cmd: op === '=' ? '+' : op, bits: who !== 0 ? who & arg : arg });
}

/** A copy of class `from` (`g=u`, `o+g`) into the classes of `who` (all when 0). */
function addCopy(cmds: Cmd[], from: 'u' | 'g' | 'o', op: '=' | '+' | '-', who: number): void {
  const to = who === 0 ? RWXU | RWXG | RWXO : (who & 0o400 ? RWXU : 0) | (who & 0o040 ? RWXG : 0) | (who & 0o004 ? RWXO : 0);
  cmds.push({ cmd: from, to, clear: op !== '+', set: op !== '-' });
}

function parseSymbolic(spec: string): Cmd[] {
  const cmds: Cmd[] = [];
  let i = 0;
  const at = (): string => spec[i] ?? '';
  for (;;) {
    let who = 0;
    for (;;) {
      const c = at();
      if (c === '') throw syntax(spec);
      if (c === 'a') who |= STANDARD;
      else if (c === 'u') who |= SUID | RWXU;
      else if (c === 'g') who |= SGID | RWXG;
      else if (c === 'o') who |= RWXO;
      else break;
      i++;
    }
    // one or more operations after the classes: `u+x-w`
    for (;;) {
      const op = at();
      if (op !== '+' && op !== '-' && op !== '=') throw syntax(spec);
      i++;
      let equalDone = false;
      who &= ~STICKY;
      let perm = 0;
      let permX = 0;
      for (;; i++) {
        const b = at();
        if (b === 'r') perm |= 0o444;
        else if (b === 'w') perm |= 0o222;
        else if (b === 'x') perm |= 0o111;
        else if (b === 's') {
          // set-id bits only for a clause that names u or g (or none)
          if (who === 0 || (who & ~RWXO) !== 0) perm |= SUID | SGID;
        } else if (b === 't') {
          // the sticky bit only for a clause that names u or g (or none), as setmode
          if (who === 0 || (who & ~RWXO) !== 0) {
            who |= STICKY;
            perm |= STICKY;
          }
        } else if (b === 'X') {
          if (op !== '-') permX = 0o111;
          else perm |= 0o111;
        } else if (b === 'u' || b === 'g' || b === 'o') {
          if (perm !== 0) {
            add(cmds, op, who, perm);
            perm = 0;
          }
          if (op === '=') equalDone = true;
          if (permX !== 0) {
            add(cmds, 'X', who, permX);
            permX = 0;
          }
          addCopy(cmds, b, op, who);
        } else {
          if (perm !== 0 || (op === '=' && !equalDone)) {
            if (op === '=') equalDone = true;
            add(cmds, op, who, perm);
          }
          if (permX !== 0) add(cmds, 'X', who, permX);
          break;
        }
      }
      if (i >= spec.length) return cmds;
      if (at() === ',') break;
    }
    i++;
  }
}

/** Runs of clear/set/X commands become at most one of each (clear, then set, then X), as setmode compresses them. */
function merged(cmds: Cmd[]): Cmd[] {
  const out: Cmd[] = [];
  for (let i = 0; i < cmds.length; i++) {
    const c = cmds[i]!;
    if (c.cmd !== '-' && c.cmd !== '+' && c.cmd !== 'X') {
      out.push(c);
      continue;
    }
    let set = 0;
    let clr = 0;
    let x = 0;
    for (; i < cmds.length; i++) {
      const d = cmds[i]!;
      if (d.cmd === '-') {
        clr |= d.bits;
        set &= ~d.bits;
        x &= ~d.bits;
      } else if (d.cmd === '+') {
        set |= d.bits;
        clr &= ~d.bits;
        x &= ~d.bits;
      } else if (d.cmd === 'X') {
        x |= d.bits & ~set;
      } else {
        i--;
        break;
      }
    }
    if (clr !== 0) out.push({ cmd: '-', bits: clr });
    if (set !== 0) out.push({ cmd: '+', bits: set });
    if (x !== 0) out.push({ cmd: 'X', bits: x });
  }
  return out;
}

function apply(cmds: readonly Cmd[], original: number, isDir: boolean): number {
  let mode = original;
  for (const c of cmds) {
    switch (c.cmd) {
      case 'u':
      case 'g':
      case 'o': {
        // the source class's rwx, repeated in every class, then kept to the target classes
        const value = (mode >> (c.cmd === 'u' ? 6 : c.cmd === 'g' ? 3 : 0)) & 0o7;
        // `=` clears the target classes whole; `-` clears what the source class has
        if (c.clear) mode &= ~((c.set ? 0o7 : value) * 0o111 & c.to);
        if (c.set) mode |= value * 0o111 & c.to;
        break;
      }
      case '+':
        mode |= c.bits;
        break;
      case '-':
        mode &= ~c.bits;
        break;
      case 'X':
        if ((original & 0o111) !== 0 || isDir) mode |= c.bits;
        break;
    }
  }
  return mode & 0o7777;
}
