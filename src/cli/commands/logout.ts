import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('logout')
    .description('forget the saved credentials for a registry')
    .argument('<registry>', 'registry host[:port] (docker.io for Docker Hub)')
    .action(async (registry: string) => {
      const { logout, normaliseRegistryName } = await import('../../registry/login.js');
      const removed = await logout(registry);
      process.stderr.write(removed ? `removed credentials for ${normaliseRegistryName(registry)}\n` : `not logged in to ${normaliseRegistryName(registry)}\n`);
    });
}
