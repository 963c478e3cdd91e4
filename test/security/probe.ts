import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

const SOURCE = join(import.meta.dirname, 'probe.c');

/**
 * Compiles probe.c (static, so it runs in a busybox rootfs) into `dir` and
 * returns the binary's path. gcc and libc6-dev are in
 * scripts/debian-packages.txt.
 */
export function buildProbe(dir: string): string {
  const out = join(dir, 'kiln-probe');
  execFileSync('gcc', ['-static', '-O2', '-o', out, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

/** Puts the probe at /bin/kiln-probe of a rootfs directory. */
export function installProbe(probe: string, rootfs: string): void {
  const dest = join(rootfs, 'bin', 'kiln-probe');
  copyFileSync(probe, dest);
  chmodSync(dest, 0o755);
}

/** `name=result` lines of the probe's output, as a map. */
export function probeResults(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([\w-]+)=(\w+)$/.exec(line.trim());
    if (m) r[m[1] as string] = m[2] as string;
  }
  return r;
}
