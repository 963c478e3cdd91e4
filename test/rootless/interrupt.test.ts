import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chownTree, ensureTestUser, kilnAs, spawnKilnAs, userDir, type TestUser } from '../helpers/rootless-user.js';

/** Processes whose real uid is the user or one of its subordinate ids (what the namespace maps). */
function namespacedProcesses(user: TestUser): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      const uid = Number(m?.[1]);
      if (uid === user.uid || (uid >= user.subStart! && uid < user.subStart! + user.subCount!)) out.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

/** Mounts under `dir` seen by any process on the machine (any mount namespace). */
function mountsUnder(dir: string): string[] {
  const out = new Set<string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) if (line.includes(dir)) out.add(line);
    } catch {
      // gone
    }
  }
  return [...out];
}

async function until(cond: () => boolean, limitMs: number): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
}

describe('interrupting a rootless build', () => {
  let user: TestUser;
  let home: string;
  beforeAll(async () => {
    user = ensureTestUser();
    home = userDir(user);
    mkdirSync(join(home, 'ctx'));
    copyFileSync('/usr/bin/busybox', join(home, 'ctx', 'busybox'));
    writeFileSync(join(home, 'ctx', 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo ready-$((40+2)); exec /bin/busybox sleep 300"]\n');
    chownTree(home, user);
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('SIGINT during a RUN exits 130 and leaves no mounts, no namespaced processes and no runtime state', async () => {
    const child = spawnKilnAs(user, ['build', '--progress', 'plain', '--network', 'default', join(home, 'ctx')], { home });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number>((resolve) => child.on('close', (code, sig) => resolve(code ?? (sig ? -1 : 0))));
    await until(() => output.includes('ready-42'), 60_000);
    expect(output).toContain('ready-42');
    // the RUN's processes are there, in the subordinate range or as the user
    expect(namespacedProcesses(user).length).toBeGreaterThan(2);
    child.kill('SIGINT');
    expect(await exited).toBe(130);

    await until(() => namespacedProcesses(user).length === 0 && mountsUnder(home).length === 0, 10_000);
    expect(namespacedProcesses(user)).toEqual([]);
    expect(mountsUnder(home)).toEqual([]);
    const store = join(home, '.local', 'share', 'kiln');
    // partial/ holds resumable downloads by design; a RUN's scratch dir must be gone
    expect(readdirSync(join(store, 'tmp')).filter((n) => n !== 'partial')).toEqual([]);
    const runcState = join(home, '.cache', 'kiln', 'runc');
    expect(existsSync(runcState) ? readdirSync(runcState) : []).toEqual([]);

    // and the next build in the same store runs normally
    writeFileSync(join(home, 'ctx', 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "true"]\n');
    expect((await kilnAs(user, ['build', '--network', 'none', join(home, 'ctx')], { home })).code).toBe(0);
  });
});
