import type { Command } from 'commander';
import { register as build } from './build.js';
import { register as outline } from './outline.js';
import { register as targets } from './targets.js';
import { register as check } from './check.js';
import { register as run } from './run.js';
import { register as pull } from './pull.js';
import { register as push } from './push.js';
import { register as copy } from './copy.js';
import { register as login } from './login.js';
import { register as logout } from './logout.js';
import { register as images } from './images.js';
import { register as inspect } from './inspect.js';
import { register as tag } from './tag.js';
import { register as rmi } from './rmi.js';
import { register as save } from './save.js';
import { register as load } from './load.js';
import { register as prune } from './prune.js';
import { register as fsck } from './fsck.js';
import { register as df } from './df.js';
import { register as setup } from './setup.js';
import { register as sbom } from './sbom.js';
import { register as sign } from './sign.js';

/** Top-level commands: the names a module's `register(program)` declares, and that function. */
export interface CommandEntry {
  names: readonly string[];
  register: (program: Command) => void;
}

/** Each command module exports `register(program)`; add new ones here, in the order `kiln --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  ...Object.entries({ build, outline, targets, check, run, pull, push, copy, login, logout, images, inspect, tag, rmi, save, load, prune, fsck, df, sbom }).map(([name, register]) => ({ names: [name], register })),
  { names: ['sign', 'verify', 'generate-key-pair'], register: sign },
  { names: ['setup'], register: setup },
];
