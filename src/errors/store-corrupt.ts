import { KilnError } from './kiln-error.js';

/**
 * A file kiln wrote into its store (index.json, a metadata record, a JSON
 * blob) that cannot be decoded: damaged on disk or written by someone else.
 * Names the file, so `kiln fsck` and the user can find it.
 */
export class StoreCorruptError extends KilnError {
  /** Absolute path of the damaged file (or `blob sha256:…` for a blob). */
  readonly file: string;

  constructor(file: string, cause: string, opts: { cause?: unknown } = {}) {
    super('STORE', `${file}: ${cause}`, { hint: 'kiln fsck lists damaged store files', ...opts });
    this.name = 'StoreCorruptError';
    this.file = file;
  }
}
