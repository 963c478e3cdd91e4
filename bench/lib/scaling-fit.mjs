// Shared by the scaling benchmarks: timing a child process and fitting t = c·n^k.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Least-squares slope of log t against log n: the k in t ≈ c·n^k (needs two sizes or more). */
export function fitExponent(points) {
  const xs = points.map((p) => Math.log(p.n));
  const ys = points.map((p) => Math.log(Math.max(p.seconds, 1e-6)));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** Runs a command to completion; resolves to wall seconds, or rejects with its exit code and the tail of its output. */
export function timeCommand(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let tail = '';
    const keep = (d) => (tail = (tail + d.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) resolve(seconds);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${tail.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

const GNU_TIME = '/usr/bin/time';

/**
 * `timeCommand` plus the CPU seconds (user + sys) of the command and every child it
 * waited for, through GNU time (`wait4`'s rusage), and the peak resident memory of the
 * largest of them (`maxRssKb`). On a shared machine other jobs stretch wall time but
 * hardly the CPU a build uses, so an exponent fitted on CPU seconds is the steadier one.
 * Without GNU time: `{ seconds }` only.
 */
export async function timeCommandCpu(cmd, args, opts = {}) {
  if (!existsSync(GNU_TIME)) return { seconds: await timeCommand(cmd, args, opts) };
  const dir = await mkdtemp(join(tmpdir(), 'kiln-scaling-time-'));
  try {
    const out = join(dir, 'time');
    const seconds = await timeCommand(GNU_TIME, ['-f', '%U %S %M', '-o', out, cmd, ...args], opts);
    const [user, sys, maxRssKb] = (await readFile(out, 'utf8')).trim().split('\n').at(-1).split(' ').map(Number);
    return { seconds, cpuSeconds: user + sys, maxRssKb };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
