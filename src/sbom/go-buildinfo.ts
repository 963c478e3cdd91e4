import { open } from 'node:fs/promises';
import { purl } from './purl.js';
import type { FoundPackage } from './types.js';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const CHUNK = 1 << 20;
/** Version and module strings follow the header; real ones are a few KiB, this bounds a hostile one. */
const MAX_INFO = 1 << 20;

export interface GoBuildInfo {
  goVersion: string;
  /** The main module: path and version ("(devel)" for a local build). */
  main?: { path: string; version: string };
  deps: Array<{ path: string; version: string }>;
}

function readUvarint(buf: Buffer, pos: number): [number, number] | undefined {
  let x = 0;
  let shift = 0;
  for (let i = 0; i < 10 && pos + i < buf.length; i++) {
    const b = buf[pos + i]!;
    x += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [x, pos + i + 1];
    shift += 7;
  }
  return undefined;
}

/**
 * Decodes the build information block Go (1.18 and later) embeds in every
 * binary: a 32-byte header starting with "\xff Go buildinf:", then, when the
 * header's flags say the strings are inline, the Go version and the module
 * list as length-prefixed strings. Older binaries store pointers instead; they
 * are not decoded (kiln would have to parse the ELF sections to follow them).
 */
export function decodeBuildInfo(block: Buffer): GoBuildInfo | undefined {
  if (block.length < 32 || !block.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const flags = block[15]!;
  if ((flags & 0x2) === 0) return undefined;
  let pos = 32;
  const str = (): string | undefined => {
    const v = readUvarint(block, pos);
    if (!v || v[0] > MAX_INFO || v[1] + v[0] > block.length) return undefined;
    pos = v[1] + v[0];
    return block.subarray(v[1], v[1] + v[0]).toString('utf8');
  };
  const goVersion = str();
  let mod = str();
  if (goVersion === undefined || mod === undefined) return undefined;
  // the module text is wrapped in two 16-byte sentinels
  if (mod.length >= 33 && mod[mod.length - 17] === '\n') mod = mod.slice(16, -16);
  const info: GoBuildInfo = { goVersion, deps: [] };
  let last: { path: string; version: string } | undefined;
  for (const line of mod.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'mod' && f[1]) {
      info.main = { path: f[1], version: f[2] ?? '' };
      last = info.main;
    } else if (f[0] === 'dep' && f[1]) {
      last = { path: f[1], version: f[2] ?? '' };
      info.deps.push(last);
    } else if (f[0] === '=>' && f[1] && last) {
      // a replace directive: the code that was built is the replacement
      last.path = f[1];
      last.version = f[2] ?? last.version;
    }
  }
  return info;
}

/** Finds and decodes the build info of the binary at `hostPath`, reading it in bounded chunks. */
export async function readGoBuildInfo(hostPath: string, maxBytes: number): Promise<GoBuildInfo | undefined> {
  const fh = await open(hostPath, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    if (head.toString('latin1') !== '\x7fELF') return undefined;
    const buf = Buffer.alloc(CHUNK + MAGIC.length);
    let offset = 0;
    let carry = 0;
    while (offset < maxBytes) {
      const { bytesRead } = await fh.read(buf, carry, CHUNK, offset);
      if (bytesRead === 0) return undefined;
      const view = buf.subarray(0, carry + bytesRead);
      const at = view.indexOf(MAGIC);
      if (at >= 0) {
        const start = offset - carry + at;
        const block = Buffer.alloc(32 + MAX_INFO);
        const r = await fh.read(block, 0, block.length, start);
        return decodeBuildInfo(block.subarray(0, r.bytesRead));
      }
      carry = Math.min(MAGIC.length - 1, view.length);
      view.copy(buf, 0, view.length - carry);
      offset += bytesRead;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

function goPurl(path: string, version: string): string {
  const slash = path.lastIndexOf('/');
  return slash > 0
    ? purl({ type: 'golang', namespace: path.slice(0, slash), name: path.slice(slash + 1), version })
    : purl({ type: 'golang', name: path, version });
}

/** The modules a Go binary was built from (its main module when versioned, and every dependency), plus the standard library. */
export function goPackages(info: GoBuildInfo, location: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  const add = (path: string, version: string) => out.push({ kind: 'golang', name: path, version, purl: goPurl(path, version), location });
  if (info.main && info.main.version && info.main.version !== '(devel)') add(info.main.path, info.main.version);
  for (const d of info.deps) add(d.path, d.version);
  out.push({ kind: 'golang', name: 'stdlib', version: info.goVersion, purl: purl({ type: 'golang', name: 'stdlib', version: info.goVersion }), location });
  return out;
}
