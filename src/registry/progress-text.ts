import type { RegistryEvent } from './events.js';
import { formatSize as size } from '../spec/size.js';

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
