import type { Command } from 'commander';
import { KilnError } from '../errors/index.js';
import { globalOptions } from './global-options.js';
import type { RegistryClientOptions } from '../registry/client.js';

/**
 * What pull, push and copy share: the client options from the global flags
 * (insecure registries, mirrors, debug traces) and progress lines on stderr
 * unless `--quiet`.
 */
export async function registryClientOptions(cmd: Command, quiet: boolean | undefined): Promise<RegistryClientOptions> {
  const g = globalOptions(cmd);
  const { formatRegistryEvent } = await import('../registry/progress-text.js');
  return {
    insecureRegistries: g.insecureRegistry,
    mirrors: g.registryMirror,
    ...(g.debug ? { debug: (l: string) => process.stderr.write(`debug: ${l}\n`) } : {}),
    onEvent: (e) => {
      if (quiet) return;
      const line = formatRegistryEvent(e);
      if (line) process.stderr.write(`${line}\n`);
    },
  };
}

/** `--chunk-size` and `--max-concurrent-uploads` of push and copy. */
export async function uploadFlags(flags: { chunkSize?: string; maxConcurrentUploads?: string }): Promise<{ chunkSize?: number; uploadConcurrency: number }> {
  const uploadConcurrency = positiveInt('--max-concurrent-uploads', flags.maxConcurrentUploads ?? '3');
  // without the flag, the client's own default: one PUT up to 64 MiB, one resumable PATCH beyond
  if (flags.chunkSize === undefined) return { uploadConcurrency };
  const { parseSize } = await import('../spec/size.js');
  const chunkSize = parseSize(flags.chunkSize, '--chunk-size');
  if (!chunkSize) throw new KilnError('USAGE', `invalid --chunk-size "${flags.chunkSize}" (e.g. 64M)`);
  return { chunkSize, uploadConcurrency };
}

export function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new KilnError('USAGE', `${name} must be a positive integer`);
  return n;
}
