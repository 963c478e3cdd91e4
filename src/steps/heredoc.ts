import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { KilnError, printable } from '../errors/index.js';
import path from 'node:path';
import type { Heredoc, RunInstruction } from '../frontend/instructions.js';
import { BuildContext } from '../context/build-context.js';
import type { FsView } from '../context/fs-view.js';
import type { FileMountSpec } from '../sandbox/run-mounts.js';

/**
 * Heredocs (`<<EOF`) as BuildKit gives them meaning: for COPY/ADD each one is
 * a file; for RUN the heredoc is either the whole script or text the shell
 * reads from its standard input.
 */

/**
 * COPY <<EOF files: each heredoc becomes a file in a small temporary tree under `scratch`.
 * The name comes from the Dockerfile, so it is taken as a path inside that tree, as BuildKit makes
 * the file inside a scratch state: `..` stops at the tree's top (`<<../../x` is the file `x`).
 * Joined to the tree's host path as written, it created or overwrote any host file, as root.
 */
export async function heredocTree(heredocs: Heredoc[], scratch: string): Promise<{ view: FsView; names: string[] } | undefined> {
  if (!heredocs.length) return undefined;
  const dir = await mkdtemp(path.join(scratch, 'h-'));
  const names: string[] = [];
  for (const h of heredocs) {
    const name = heredocFileName(h.name);
    // the tree is this step's own, fresh: nothing in it but the files written here
    if (name.includes('/')) await mkdir(path.join(dir, path.posix.dirname(name)), { recursive: true });
    await writeFile(path.join(dir, name), h.body, { mode: 0o644 });
    names.push(name);
  }
  return { view: BuildContext.open(dir, { ignoreFile: null, label: 'heredoc' }), names };
}

/** A heredoc's name as a relative path that stays inside its tree. */
export function heredocFileName(name: string): string {
  const inside = path.posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
  if (inside === '') throw new KilnError('CONTEXT', `COPY failed: the heredoc name "${printable(name, 80)}" does not name a file`);
  return inside;
}

/**
 * A shell-form RUN with heredocs → its argv, and the script mount when the
 * heredoc is the whole command; undefined when the RUN has no heredocs.
 */
export function heredocRunCommand(instr: Pick<RunInstruction, 'cmd' | 'heredocs'>, shell: string[]): { args: string[]; mount?: FileMountSpec } | undefined {
  if (instr.cmd.form !== 'shell' || !instr.heredocs.length) return undefined;
  if (instr.heredocs.length === 1 && /^<<-?\s*["']?[A-Za-z0-9_.-]+["']?\s*$/.test(instr.cmd.text.trim())) {
    const h = instr.heredocs[0]!;
    return heredocRun(shell, h.name, h.body);
  }
  // the shell reads the heredocs itself, as BuildKit does when the command has more than the heredoc
  return { args: [...shell, [instr.cmd.text, ...instr.heredocs.map((h) => `${h.body}${h.name}`)].join('\n')] };
}

/**
 * `RUN <<EOF …` with the heredoc as the whole command, as BuildKit's dispatchRun runs it, always
 * through the whole SHELL (so `SHELL ["/bin/bash", "-o", "pipefail", "-c"]` keeps pipefail): a
 * script starting with `#!` is mounted read-only and executable at /dev/pipes/<name> (inside the
 * /dev tmpfs, so never in a layer) and the shell is given its path; any other is given to the
 * shell as its command text. Until 2026-12-07 kiln ran the latter as `<shell[0]> /dev/pipes/<name>`,
 * dropping the SHELL's flags.
 */
export function heredocRun(shell: string[], name: string, content: string): { args: string[]; mount?: FileMountSpec } {
  if (!content.startsWith('#!')) return { args: [...shell, content] };
  const target = `/dev/pipes/${name.replace(/[^A-Za-z0-9._-]/g, '_') || 'EOF'}`;
  return { args: [...shell, target], mount: { type: 'file', target, content, mode: 0o755 } };
}
