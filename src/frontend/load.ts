/** Reads and parses a Dockerfile from disk (the front end's only I/O). */
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KilnError } from '../errors/index.js';
import type { ParsedDockerfile } from './instructions.js';
import { parseDockerfile } from './parse.js';
import { checkDockerfileSize, MAX_DOCKERFILE_BYTES } from './syntax-tree.js';

/**
 * Reads a Dockerfile, refusing one over MAX_DOCKERFILE_BYTES before holding it
 * in memory (a FIFO or a growing file is read only up to the limit).
 * Errors from the file system are left to the caller.
 */
export async function readDockerfileText(path: string, shown: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    // unfilled: only the bytes read are ever looked at (zeroing 4 MiB cost every build about a millisecond)
    const buf = Buffer.allocUnsafe(MAX_DOCKERFILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    const text = buf.subarray(0, n).toString('utf8');
    if (n > MAX_DOCKERFILE_BYTES) {
      const { size } = await fh.stat();
      checkDockerfileSize(text, shown, Math.max(size, n));
    }
    return text;
  } finally {
    await fh.close();
  }
}

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
    text = await readDockerfileText(path, shown);
  } catch (e) {
    if (e instanceof KilnError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KilnError('NOT_FOUND', `cannot read Dockerfile: ${shown} does not exist`, { hint: 'give its path with -f' });
    throw new KilnError('CONTEXT', `cannot read Dockerfile ${shown}: ${(e as Error).message}`);
  }
  return { parsed: parseDockerfile(text, { file: shown }), path };
}
