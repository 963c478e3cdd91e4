import { KilnError, isKilnError } from './kiln-error.js';

/**
 * kiln builds as root until rootless mode exists: extracting layers keeps
 * their owners (chown) and RUN mounts overlays. Without root the kernel
 * answers EPERM somewhere deep in a step; this turns that into one line
 * saying what is needed. Returns undefined when `e` is something else or
 * the process is root (EPERM as root has other causes, e.g. an immutable file).
 */
export function needsRootError(e: unknown, euid = process.geteuid?.() ?? 0): KilnError | undefined {
  if (euid === 0 || (isKilnError(e) && e.code === 'NEEDS_ROOT')) return undefined;
  let op: string | undefined;
  for (let cur: unknown = e; cur instanceof Error; cur = cur.cause) {
    const errno = cur as NodeJS.ErrnoException;
    if (errno.code === 'EPERM') {
      op = errno.syscall ?? 'an operation';
      break;
    }
    const m = /^(\w+(?: \w+)?)\b.*\bEPERM\b/.exec(cur.message);
    if (m) {
      op = m[1];
      break;
    }
  }
  if (op === undefined) return undefined;
  const location = isKilnError(e) ? e.location : undefined;
  return new KilnError('NEEDS_ROOT', `needs root: the kernel refused ${op} (EPERM)`, {
    ...(location ? { location } : {}),
    hint: 'run kiln as root, or as a user through the kiln command, which enters rootless mode',
    cause: e,
  });
}
