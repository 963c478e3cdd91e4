#!/usr/bin/env node
// The per-file system calls a COPY of a host tree makes from Node, and nothing else: list every
// directory, lstat every entry, then open each file as the layer writer does (O_NOFOLLOW|O_NONBLOCK),
// fstat it (the source-inode check), read it, sha256 it, close it. No tar, no store, no cache.
// It separates what Node's fs API costs per call (each lstat/fstat makes a Stats object) from
// what kiln itself adds: kiln ÷ this floor is kiln's own overhead, this floor ÷ `tar c | sha256sum`
// is the price of making the calls through Node rather than from C.
//   node bench/lib/node-files-floor.mjs DIR
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const buf = Buffer.allocUnsafe(1 << 20);
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = `${dir}/${name}`;
    const st = lstatSync(p);
    if (st.isDirectory()) walk(p);
    else if (st.isFile()) files.push(p);
  }
};
walk(process.argv[2] ?? '.');
const all = createHash('sha256');
for (const p of files) {
  const fd = openSync(p, FLAGS);
  try {
    const st = fstatSync(fd);
    let n = 0;
    for (let r; n < st.size && (r = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      all.update(createHash('sha256').update(buf.subarray(0, r)).digest());
      n += r;
    }
  } finally {
    closeSync(fd);
  }
}
process.stdout.write(`${files.length} files ${all.digest('hex')}\n`);
