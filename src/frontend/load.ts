/** Reads and parses a Dockerfile from disk (the front end's only I/O). */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KilnError } from '../errors/index.js';
import type { ParsedDockerfile } from './instructions.js';
import { parseDockerfile } from './parse.js';

export interface LoadedDockerfile {
  parsed: ParsedDockerfile;
  /** Absolute path read. */
  path: string;
}

/** `file` as given by `-f` (shown in messages as given), else `<context>/Dockerfile`. */
export async function loadDockerfile(opts: { file?: string; context?: string }): Promise<LoadedDockerfile> {
  const context = opts.context ?? '.';
  const path = opts.file ? resolve(opts.file) : resolve(join(context, 'Dockerfile'));
  const shown = opts.file ?? (opts.context ? join(opts.context, 'Dockerfile') : 'Dockerfile');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KilnError('NOT_FOUND', `cannot read Dockerfile: ${shown} does not exist`, { hint: 'give its path with -f' });
    throw new KilnError('CONTEXT', `cannot read Dockerfile ${shown}: ${(e as Error).message}`);
  }
  return { parsed: parseDockerfile(text, { file: shown }), path };
}
