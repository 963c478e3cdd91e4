import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { LayerEntry } from '../../src/layer/types.js';

export function tempDir(prefix = 'kiln-layer-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export function sh(cmd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function fileEntry(path: string, content: string | Buffer, extra: Partial<LayerEntry> = {}): LayerEntry {
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: buf.length, open: () => Readable.from([buf]), ...extra };
}

export function dirEntry(path: string, extra: Partial<LayerEntry> = {}): LayerEntry {
  return { path, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000, ...extra };
}

export async function collect(src: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of src) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** security.capability for cap_net_bind_service=ep: binary, with NUL and high bytes. */
export const CAP_NET_BIND = Buffer.from('0100000200040000000000000000000000000000', 'hex');
