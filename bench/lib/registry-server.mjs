// The real Distribution registry (Debian's docker-registry) on 127.0.0.1, temp storage.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

function portFree(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function anyPort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function ping(host) {
  return new Promise((resolve) => {
    const req = http.get(`http://${host}/v2/`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

/**
 * Start a registry in `dir` (storage + config + log). Port 5000 when free, else any free
 * port. Returns {host: '127.0.0.1:PORT', port, stop()}.
 */
export async function startRegistry(dir, preferredPort = 5000) {
  await mkdir(join(dir, 'storage'), { recursive: true });
  const port = (await portFree(preferredPort)) ? preferredPort : await anyPort();
  const host = `127.0.0.1:${port}`;
  const cfg = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}`,
    '',
  ].join('\n');
  const cfgPath = join(dir, 'config.yml');
  await writeFile(cfgPath, cfg);
  const log = createWriteStream(join(dir, 'registry.log'), { flags: 'a' });
  let child = null;
  let exited = true;
  let lastExit = null;
  const launch = async () => {
    const c = spawn(REGISTRY_BIN, ['serve', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = c;
    exited = false;
    c.stdout.pipe(log, { end: false });
    c.stderr.pipe(log, { end: false });
    c.on('exit', (code, sig) => { if (child === c) { exited = true; lastExit = sig ?? `exit ${code}`; } });
    const deadline = Date.now() + 15000;
    while (!(await ping(host))) {
      if (exited || Date.now() > deadline) {
        try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
        throw new Error(`docker-registry did not start on ${host} (see ${join(dir, 'registry.log')})`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await launch();
  let stopped = false;
  const stop = async () => {
    stopped = true;
    if (exited) { log.end(); return; }
    const c = child;
    const done = new Promise((r) => c.once('exit', r));
    try { process.kill(-c.pid, 'SIGTERM'); } catch { log.end(); return; }
    const t = setTimeout(() => { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await done;
    clearTimeout(t);
    log.end();
  };
  /**
   * Restart the registry (same port, same storage: pushed images survive) if something
   * killed it — e.g. a `pkill -x docker-registry` elsewhere on a shared machine.
   * Returns a note when it had to, else null.
   */
  const ensure = async () => {
    if (stopped || (!exited && (await ping(host)))) return null;
    const why = exited ? `exited (${lastExit})` : 'stopped answering';
    if (!exited) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }
    await launch();
    return `registry on ${host} ${why}; restarted with the same storage`;
  };
  return { host, port, get pid() { return child.pid; }, stop, ensure };
}
