import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `git daemon` on 127.0.0.1 serving bare copies of local repositories, so ADD
 * tests clone over git:// (kiln refuses file:// git sources).
 */
export interface GitDaemon {
  /** git://127.0.0.1:<port>/<name>.git */
  url(name: string): string;
  stop(): void;
}

export async function startGitDaemon(repos: Record<string, string>): Promise<GitDaemon> {
  const base = mkdtempSync(join(tmpdir(), 'kiln-gitd-'));
  for (const [name, repo] of Object.entries(repos)) execFileSync('git', ['clone', '-q', '--bare', repo, join(base, `${name}.git`)]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const d: ChildProcess = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], { stdio: 'ignore' });
    // ready when the port accepts connections, or failed when the process exits
    const up = await new Promise<boolean>((resolve) => {
      d.once('exit', () => resolve(false));
      const poll = (): void => {
        const s = createConnection({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => {
          s.destroy();
          if (d.exitCode === null) setTimeout(poll, 10);
        });
      };
      poll();
    });
    if (up) {
      return {
        url: (name) => `git://127.0.0.1:${port}/${name}.git`,
        // the bare copies go with the daemon: nothing of a test run is left in the temp directory
        stop: () => {
          d.kill();
          rmSync(base, { recursive: true, force: true });
        },
      };
    }
  }
  rmSync(base, { recursive: true, force: true });
  throw new Error('git daemon did not start');
}
