import type { RegistryEvent } from './events.js';

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/**
 * One line per finished blob (and per warning) for plain progress output;
 * intermediate byte counts are left to richer displays.
 */
export function formatRegistryEvent(e: RegistryEvent): string | undefined {
  if (e.type === 'warning') return `warning: ${e.message}`;
  const short = e.digest.slice('sha256:'.length, 'sha256:'.length + 12);
  const verb = e.type === 'pull-progress' ? 'pulled' : 'pushed';
  switch (e.phase) {
    case 'exists':
      return `${short}: already ${e.type === 'pull-progress' ? 'in the store' : 'in the registry'}`;
    case 'mounted':
      return `${short}: mounted from another repository`;
    case 'done':
      return `${short}: ${verb} ${size(e.total)}`;
    case 'resumed':
      return `${short}: resumed at ${size(e.done)}`;
    default:
      return undefined;
  }
}

/** `16M`, `8MiB`, `1g`, `65536` → bytes. */
export function parseByteCount(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  return n > 0 ? n : undefined;
}
