import type { Command } from 'commander';
import { register as build } from './build.js';

/** Each command module exports `register(program)`; add new ones here. */
export const COMMANDS: Array<(program: Command) => void> = [build];
