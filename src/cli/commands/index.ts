import type { Command } from 'commander';

/** Each command module exports `register(program)`; add new ones here. */
export const COMMANDS: Array<(program: Command) => void> = [];
