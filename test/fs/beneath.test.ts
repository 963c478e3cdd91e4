import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listBeneath, removeBeneath, statBeneath } from '../../src/fs/beneath.js';
import { tempDir } from '../layer/helpers.js';

/**
 * A tree someone else wrote (a RUN's upperdir), with links from inside it to a directory outside
 * (standing for the host): every lookup through a link finds nothing, and nothing outside is read,
 * listed or removed.
 */
let t: { path: string; cleanup: () => void };
let root: string;
let outside: string;
beforeEach(() => {
  t = tempDir('kiln-beneath-');
  root = join(t.path, 'root');
  outside = join(t.path, 'outside');
  mkdirSync(join(outside, 'victim'), { recursive: true });
  writeFileSync(join(outside, 'victim', 'file'), 'outside');
  writeFileSync(join(outside, 'file'), 'outside');
  mkdirSync(join(root, 'real', 'deep', 'mp'), { recursive: true });
  writeFileSync(join(root, 'real', 'deep', 'keep'), 'in');
  symlinkSync(outside, join(root, 'abs-link'));
  symlinkSync('../outside', join(root, 'rel-link'));
  symlinkSync('deep', join(root, 'real', 'inner-link'));
  writeFileSync(join(root, 'plain-file'), 'in');
});
afterEach(() => t.cleanup());

function outsideIntact(): void {
  expect(readFileSync(join(outside, 'victim', 'file'), 'utf8')).toBe('outside');
  expect(readFileSync(join(outside, 'file'), 'utf8')).toBe('outside');
}

describe('statBeneath / listBeneath / removeBeneath', () => {
  it('find and remove what is really in the tree', () => {
    expect(statBeneath(root, 'real/deep/keep')?.size).toBe(2);
    expect(listBeneath(root, 'real/deep')?.sort()).toEqual(['keep', 'mp']);
    removeBeneath(root, 'real/deep/mp');
    expect(existsSync(join(root, 'real', 'deep', 'mp'))).toBe(false);
    removeBeneath(root, 'real/deep');
    expect(existsSync(join(root, 'real', 'deep'))).toBe(false);
    // a path that is not there is no error
    removeBeneath(root, 'real/deep/mp');
  });

  it.each(['abs-link', 'rel-link'])('never go through a parent that is a link (%s)', (link) => {
    expect(statBeneath(root, `${link}/victim`)).toBeUndefined();
    expect(statBeneath(root, `${link}/file`)).toBeUndefined();
    expect(listBeneath(root, `${link}/victim`)).toBeUndefined();
    removeBeneath(root, `${link}/victim`);
    removeBeneath(root, `${link}/file`);
    outsideIntact();
    // the link itself, as the last component, is looked at and removed, not followed
    expect(listBeneath(root, link)).toBeUndefined();
    removeBeneath(root, link);
    expect(existsSync(join(root, link))).toBe(false);
    outsideIntact();
  });

  it('a link inside the tree is not followed either, nor a file taken for a directory, nor ".."', () => {
    expect(statBeneath(root, 'real/inner-link/keep')).toBeUndefined();
    removeBeneath(root, 'real/inner-link/keep');
    expect(readFileSync(join(root, 'real', 'deep', 'keep'), 'utf8')).toBe('in');
    expect(statBeneath(root, 'plain-file/x')).toBeUndefined();
    expect(listBeneath(root, 'plain-file')).toBeUndefined();
    removeBeneath(root, '../outside/victim');
    removeBeneath(root, 'real/../../outside/file');
    expect(statBeneath(root, '../outside/file')).toBeUndefined();
    outsideIntact();
  });
});
