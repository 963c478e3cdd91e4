// Child processes for the benchmark: timing, peak memory, logs, timeouts, clean stops.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';

const GNU_TIME = '/usr/bin/time';
const RSS_TAG = 'KILN_BENCH_MAXRSS_KB=';
export const HAVE_GNU_TIME = existsSync(GNU_TIME);

/** Process groups currently running, so a Ctrl-C of the harness can stop them. */
const live = new Set();

export function killAll(signal = 'SIGTERM') {
  for (const pid of live) {
    try { process.kill(-pid, signal); } catch { /* already gone */ }
  }
}

/**
 * Sum of the resident memory of a process and all its descendants, sampled by
 * scanning /proc (this kernel has no /proc/PID/task/TID/children). Builders fork
 * (Buildah re-execs itself and runs runc; kiln runs runc), so the tree is what counts
 * for "memory this build needs"; the largest single process comes from wait4 via
 * GNU time.
 */
function treeRssKb(rootPid, skipRoot = false) {
  let pids;
  try { pids = readdirSync('/proc'); } catch { return 0; }
  const children = new Map();
  const rss = new Map();
  for (const p of pids) {
    if (p.charCodeAt(0) < 48 || p.charCodeAt(0) > 57) continue;
    let stat;
    try { stat = readFileSync(`/proc/${p}/stat`, 'latin1'); } catch { continue; }
    const close = stat.lastIndexOf(')');
    const f = stat.slice(close + 2).split(' ');
    // fields after "(comm)": state(0) ppid(1) ... rss is field 24 overall -> index 21 here
    const ppid = Number(f[1]);
    rss.set(Number(p), Number(f[21]) * 4);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(p));
  }
  let sum = 0;
  const stack = skipRoot ? [...(children.get(rootPid) ?? [])] : [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    sum += rss.get(pid) ?? 0;
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return sum;
}

/**
 * Run a command, measuring wall time (ms), the peak RSS of its largest process
 * (GNU time %M, from wait4's ru_maxrss) and the sampled peak RSS of its whole
 * process tree. Output goes to `log` (a file path) when given, and the last
 * 64 KiB of stdout+stderr are kept in `output`.
 *
 * Never throws for a non-zero exit: returns {code, signal, ms, maxRssKb, treeRssKb, output, timedOut}.
 */
export async function run(cmd, args, opts = {}) {
  const { cwd, env, log, timeoutMs = 0, measure = false, input, sampleMs = 100 } = opts;
  // GNU time reports on stderr after the command ends, tagged so we can find it (no temp file)
  const timed = measure && HAVE_GNU_TIME;
  const file = timed ? GNU_TIME : cmd;
  const argv = timed ? ['-f', `${RSS_TAG}%M`, '--', cmd, ...args] : args;
  const logStream = log ? createWriteStream(log, { flags: 'a' }) : null;
  if (logStream) logStream.write(`$ ${[cmd, ...args].map(shq).join(' ')}\n`);
  let tail = '';
  const keep = (chunk) => {
    tail += chunk.toString('utf8');
    if (tail.length > 65536) tail = tail.slice(-65536);
    if (logStream) logStream.write(chunk);
  };
  const t0 = process.hrtime.bigint();
  const child = spawn(file, argv, {
    cwd,
    env: env ?? process.env,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    detached: true, // own process group: a timeout or Ctrl-C stops the whole tree
  });
  if (input !== undefined) child.stdin.end(input);
  live.add(child.pid);
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let peakTree = 0;
  let sampler = null;
  if (measure) {
    const sample = () => { const v = treeRssKb(child.pid, timed); if (v > peakTree) peakTree = v; };
    sampler = setInterval(sample, sampleMs);
    sampler.unref();
  }
  let timedOut = false;
  let timer = null;
  if (timeoutMs > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 10000).unref();
    }, timeoutMs);
  }
  const { code, signal, error } = await new Promise((resolve) => {
    child.on('error', (e) => resolve({ code: 127, signal: null, error: e }));
    child.on('close', (c, s) => resolve({ code: c, signal: s, error: null }));
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  live.delete(child.pid);
  if (sampler) clearInterval(sampler);
  if (timer) clearTimeout(timer);
  if (error) keep(Buffer.from(`${error.message}\n`));
  if (logStream) {
    logStream.write(`# exit ${code}${signal ? ` signal ${signal}` : ''} in ${(ms / 1000).toFixed(2)} s\n`);
    await new Promise((r) => logStream.end(r));
  }
  let maxRssKb = null;
  if (timed) {
    const all = [...tail.matchAll(new RegExp(`^${RSS_TAG}(\\d+)$`, 'gm'))];
    if (all.length) maxRssKb = Number(all[all.length - 1][1]);
    // GNU time's own lines are not the builder's output
    tail = tail.replace(new RegExp(`^(${RSS_TAG}\\d+|Command exited with non-zero status \\d+|Command terminated by signal \\d+)\n?`, 'gm'), '');
  }
  return { code: timedOut ? 124 : code, signal, ms, maxRssKb, treeRssKb: measure ? peakTree : null, output: tail, timedOut };
}

/** Run and throw (with the output's tail) unless it exits 0. */
export async function must(cmd, args, opts = {}) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const err = new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${lastLines(r.output, 15)}`);
    err.result = r;
    throw err;
  }
  return r;
}

export function lastLines(text, n) {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export function shq(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir) {
  let text = '';
  try { text = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return []; }
  const out = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(dir + '/')) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Unmount anything left under `dir` (lazy), then remove it. */
export async function removeTree(dir) {
  if (!dir || !existsSync(dir)) return;
  for (const mp of mountsUnder(dir)) {
    await run('umount', ['-l', mp]);
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** First meaningful line of an error from a builder's output. */
export function errorLine(output) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean)
    .filter((l) => !l.startsWith('$ ') && !l.startsWith('# exit') && !/^at\s/.test(l) && !/^Node\.js v\d/.test(l));
  const pick = (re) => lines.find((l) => re.test(l));
  return pick(/^kiln:/) // kiln's own error line
    ?? pick(/^[A-Z]\w*(Error|Exception)\b.*:/) // an uncaught JS error: "SyntaxError: …"
    ?? pick(/^(error|Error|ERRO|fatal)\b/) // commander, buildah
    ?? pick(/\b(error|Error|ERROR|failed|not found|unknown)\b/)
    ?? lines[lines.length - 1] ?? 'failed without output';
}

export async function dirNames(dir) {
  try { return (await readdir(dir)).sort(); } catch { return []; }
}
