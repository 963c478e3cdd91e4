import type { Command } from 'commander';
import { collect } from '../collect.js';
import { globalOptions } from '../global-options.js';
import { KilnError } from '../../errors/index.js';
import { setEnv } from '../../image/config.js';
import { parseNetworkMode } from '../../sandbox/network-mode.js';

interface RunFlags {
  rm?: boolean;
  network: string;
  env: string[];
  user?: string;
  workdir?: string;
  entrypoint?: string;
  volume: string[];
  hostname?: string;
  runtime?: string;
  platform?: string;
}

/** `-v SRC:DST[:ro]` → a bind mount that writes through (like docker run -v). */
export function parseVolume(spec: string): { source: string; target: string; readonly: boolean } {
  const parts = spec.split(':');
  const [source, target, mode] = parts;
  if (parts.length < 2 || parts.length > 3 || !source || !target || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new KilnError('USAGE', `invalid volume "${spec}" (want SRC:DST[:ro])`);
  }
  if (!target.startsWith('/')) throw new KilnError('USAGE', `volume target "${target}" must be absolute`);
  return { source, target, readonly: mode === 'ro' };
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run a command in an image from the store, in the same sandbox as RUN (the container is never kept)')
    .argument('<image>', 'image reference or digest in the store')
    .argument('[command...]', 'command and arguments (default: the image CMD)')
    .option('--rm', 'remove the container afterwards (always the case; accepted for docker compatibility)')
    .option('--network <mode>', 'default (own namespace, user-mode networking), none or host', 'default')
    .option('-e, --env <k=v>', 'set an environment variable; a bare K takes its value from the environment (repeatable)', collect, [])
    .option('-u, --user <user>', 'user[:group] or uid[:gid] to run as')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT (clears the image CMD)')
    .option('-v, --volume <src:dst[:ro]>', 'bind-mount a host path (repeatable)', collect, [])
    .option('--hostname <name>', 'container hostname')
    .option('--runtime <name>', 'OCI runtime: runc (default) or crun')
    .option('--platform <os/arch[/variant]>', 'which image of a multi-platform index to run (default: this host); a foreign one runs under QEMU emulation')
    .passThroughOptions()
    .action(async (ref: string, command: string[], flags: RunFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const network = parseNetworkMode(flags.network);
      const volumes = flags.volume.map(parseVolume);
      const { resolve } = await import('node:path');
      const { Store, defaultRoot } = await import('../../store/index.js');
      const { runSandbox } = await import('../../sandbox/sandbox.js');

      const store = await Store.open(g.root ?? defaultRoot());
      try {
        const { parsePlatform } = await import('../../image/platform.js');
        const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
        // the one lookup every image command uses: the name as stored, normalised, a digest or a unique prefix
        const { findImage } = await import('../store-from-options.js');
        const image = await store.imageFromDescriptor((await findImage(store, ref)).descriptor, platform ? { platform } : {});
        const c0 = image.config;
        // the image's own platform decides: a foreign one needs a binfmt_misc handler, and the error says which
        const { executionFor } = await import('../../sandbox/emulation.js');
        if (c0.os && c0.architecture) await executionFor({ os: c0.os, architecture: c0.architecture, ...(c0.variant ? { variant: c0.variant } : {}) });
        const { lowerdirsOf } = await import('../../store/lowerdirs.js');
        const lowerdirs = await lowerdirsOf(store, image.layers);
        const c = image.config.config ?? {};
        const entrypoint = flags.entrypoint !== undefined ? (flags.entrypoint === '' ? [] : [flags.entrypoint]) : (c.Entrypoint ?? []);
        const args = [...entrypoint, ...(command.length > 0 ? command : flags.entrypoint !== undefined ? [] : (c.Cmd ?? []))];
        if (args.length === 0) throw new KilnError('USAGE', `no command given and ${ref} has neither ENTRYPOINT nor CMD`);
        const env = [...(c.Env ?? [])];
        for (const e of flags.env) {
          const eq = e.indexOf('=');
          // `-e NAME` takes the value from kiln's environment, and is skipped when unset there
          const value = eq >= 0 ? e.slice(eq + 1) : process.env[e];
          if (value !== undefined) setEnv(env, [{ key: eq >= 0 ? e.slice(0, eq) : e, value }]);
        }
        const ac = new AbortController();
        const onSignal = (): void => ac.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          const result = await runSandbox({
            storeRoot: store.root,
            lowerdirs,
            args,
            env,
            user: flags.user ?? c.User,
            workdir: flags.workdir ?? (c.WorkingDir || '/'),
            hostname: flags.hostname ?? 'kiln',
            network,
            mounts: volumes.map((v) => ({ type: 'bind' as const, source: { root: resolve(v.source), path: '', chroot: true, label: `volume ${v.source}` }, target: v.target, readwrite: !v.readonly, writeThrough: true })),
            runtime: flags.runtime ? { runtime: flags.runtime } : undefined,
            signal: ac.signal,
            onOutput: (stream, line) => (stream === 'stdout' ? process.stdout : process.stderr).write(`${line}\n`),
          });
          process.exitCode = result.exitCode;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      } finally {
        await store.close();
      }
    });
}
