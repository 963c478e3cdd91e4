import type { Command } from 'commander';
import { KilnError } from '../../errors/index.js';
import { globalOptions } from '../global-options.js';

interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
}

export function register(program: Command): void {
  program
    .command('login')
    .description('check credentials against a registry and save them (credential helper, else config.json)')
    .argument('<registry>', 'registry host[:port] (docker.io for Docker Hub)')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin: arguments are visible to other users)')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (registry: string, flags: LoginFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      if (flags.password !== undefined && flags.passwordStdin) throw new KilnError('USAGE', '--password and --password-stdin are mutually exclusive');
      if (flags.passwordStdin && !flags.username) throw new KilnError('USAGE', '--password-stdin needs --username');
      const username = flags.username ?? (await prompt('Username: ', false));
      let password = flags.password;
      if (flags.passwordStdin) password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
      else password ??= await prompt('Password: ', true);
      if (flags.password !== undefined) process.stderr.write('warning: --password is visible to other users; use --password-stdin\n');

      const { login } = await import('../../registry/login.js');
      const saved = await login(registry, { username, password }, {
        insecureRegistries: g.insecureRegistry,
        ...(g.debug ? { debug: (l: string) => process.stderr.write(`debug: ${l}\n`) } : {}),
      });
      process.stderr.write(`login succeeded; credentials saved ${saved.kind === 'helper' ? `with ${saved.program}` : `in ${saved.path}`}\n`);
    });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one line from the terminal; with `hidden`, without echoing it. */
async function prompt(question: string, hidden: boolean): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new KilnError('USAGE', `no terminal to ask for the ${hidden ? 'password' : 'username'}; use ${hidden ? '--password-stdin' : '--username'}`);
  process.stderr.write(question);
  stdin.setRawMode(hidden);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let line = '';
      const onData = (s: string): void => {
        for (const ch of s) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(line);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new KilnError('CANCELLED', 'login cancelled'));
            return;
          }
          if (ch === '\u007f') line = line.slice(0, -1);
          else line += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    if (hidden) stdin.setRawMode(false);
    stdin.pause();
  }
}
