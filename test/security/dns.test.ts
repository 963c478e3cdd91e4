import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { bench, type Bench } from '../builder/helpers.js';
import { KILN_BIN, rebuildIfStale } from '../helpers/kiln-cli.js';

/**
 * DNS in the default network, end to end, without a packet leaving the host:
 * kiln runs in a network namespace of its own holding only lo (so nothing it
 * or slirp4netns sends can go anywhere else) and a mount namespace where
 * /etc/resolv.conf names 127.0.0.1, where this test's DNS server answers.
 * Inside the RUN, resolv.conf names slirp4netns's forwarder 10.0.2.3, which
 * passes the query to the resolver of kiln's namespace.
 */

const HARNESS = `
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
const [kiln, root, image] = process.argv.slice(2);
const server = dgram.createSocket('udp4');
let queries = 0;
server.on('message', (msg, from) => {
  queries++;
  // the question: labels up to the zero byte, then type and class
  let end = 12;
  while (msg[end] !== 0 && end < msg.length) end += msg[end] + 1;
  const question = msg.subarray(12, end + 5);
  const qtype = msg.readUInt16BE(end + 1);
  const answers = qtype === 1 ? 1 : 0;
  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2);
  header.writeUInt16BE(0x8180, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers, 6);
  const answer = answers ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 42]) : Buffer.alloc(0);
  server.send(Buffer.concat([header, question, answer]), from.port, from.address);
});
server.bind(53, '127.0.0.1', () => {
  const c = spawn(process.execPath, [kiln, '--root', root, 'run', image, 'nslookup', 'probe.kiln.test'], { stdio: 'inherit' });
  c.on('close', (code) => {
    console.log('queries=' + queries);
    server.close();
    process.exitCode = code ?? 1;
  });
});
`;

let b: Bench;

beforeAll(async () => {
  await rebuildIfStale(['cli/main', 'sandbox/sandbox', 'sandbox/network']);
  b = await bench();
  await b.release();
});
afterAll(async () => b.cleanup());

test('a RUN resolves names through the slirp4netns forwarder', async () => {
  const harness = join(b.dir, 'dns-harness.mjs');
  const resolv = join(b.dir, 'resolv.conf');
  writeFileSync(harness, HARNESS);
  writeFileSync(resolv, 'nameserver 127.0.0.1\n');
  // every step must hold before kiln starts: a fresh netns with only lo, and resolv.conf pointing at this test's server
  const script = `ip link set lo up && [ "$(ip -o link | wc -l)" = 1 ] && mount --bind "$1" /etc/resolv.conf && [ "$(cat /etc/resolv.conf)" = "nameserver 127.0.0.1" ] && exec "$2" "$3" "$4" "$5" "$6"`;
  const r = await new Promise<{ code: number; out: string }>((resolve, reject) => {
    const c = spawn('unshare', ['--mount', '--net', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sh', resolv, process.execPath, harness, KILN_BIN, b.root, 'localhost/busybox:latest'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
  expect(r.out).toMatch(/Address:?\s+127\.0\.0\.42/);
  expect(r.out).toMatch(/queries=[1-9]/);
  expect(r.code).toBe(0);
});
