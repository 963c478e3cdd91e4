import { readFileSync } from 'node:fs';
import { StoreCorruptError } from '../errors/index.js';
import { parseJSONSafe, ShapeError, type Shape } from '../image/document-shapes.js';

/**
 * The one way the store reads JSON it keeps (index.json, metadata records,
 * JSON blobs): parsed without `__proto__` keys and checked against the shape
 * its reader relies on. Anything else is a StoreCorruptError naming the file,
 * never a TypeError later or an object with a borrowed prototype.
 */
export function decodeStoreJSON<T>(text: string, file: string, shape: Shape<T>): T {
  let v: unknown;
  try {
    v = parseJSONSafe(text);
  } catch (e) {
    throw new StoreCorruptError(file, `not JSON: ${(e as Error).message}`);
  }
  try {
    return shape(v);
  } catch (e) {
    if (e instanceof ShapeError) throw new StoreCorruptError(file, e.message);
    throw e;
  }
}

/** Reads and checks a JSON file; undefined when it does not exist. */
export async function readStoreJSON<T>(file: string, shape: Shape<T>): Promise<T | undefined> {
  let text: string;
  try {
    // synchronous on purpose: the store's JSON files are small, and a cached rebuild reads
    // one per step in sequence; the promise API costs four thread-pool round trips each
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreCorruptError(file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  return decodeStoreJSON(text, file, shape);
}
