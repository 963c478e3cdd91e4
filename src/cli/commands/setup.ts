import type { Command } from 'commander';

export function register(program: Command): void {
  const setup = program.command('setup').description('prepare this host for kiln features that need root changes (run only when asked)');
  setup
    .command('emulation')
    .description('mount binfmt_misc when absent and enable QEMU user-mode handlers (with the F flag) so RUN works for foreign platforms')
    .option('--platform <list>', 'platforms to enable, comma-separated', 'linux/arm64,linux/arm/v7')
    .option('--check', 'only report which platforms this host runs; change nothing')
    .action(async (flags: { platform: string; check?: boolean }) => {
      const { parsePlatformList, formatPlatform } = await import('../../image/platform.js');
      const { executablePlatforms, setupEmulation } = await import('../../sandbox/emulation.js');
      if (flags.check) {
        for (const p of await executablePlatforms()) process.stdout.write(`${formatPlatform(p)}\n`);
        return;
      }
      for (const s of await setupEmulation(parsePlatformList(flags.platform))) {
        process.stdout.write(`${s.platform}: ${s.action === 'native' ? 'runs natively' : s.action === 'enabled' ? `enabled (${s.handler})` : `already enabled (${s.handler})`}\n`);
      }
    });
}
