import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { architectureOfMagic, executionFor, nativePlatforms, parseBinfmtEntry, readBinfmt } from '../../src/sandbox/emulation.js';
import { parsePlatform } from '../../src/image/platform.js';
import { isKilnError } from '../../src/errors/index.js';
import { tempDir } from '../helpers/temp-dir.js';

// what the kernel prints for Debian's qemu-user-static handlers
const AARCH64 = 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n';
const S390X = 'enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: PF\noffset 0\nmagic 7f454c4602020100000000000000000000020016\nmask ffffffffffffff00fffffffffffffffffffeffff\n';
const ARM = 'enabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: PF\noffset 0\nmagic 7f454c4601010100000000000000000002002800\nmask ffffffffffffff00fffffffffffffffffeffffff\n';
const JAR = 'enabled\ninterpreter /usr/bin/jexec\nflags: \noffset 0\nmagic 504b0304\n';

const HOST = parsePlatform('linux/amd64');
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function binfmtView(entries: Record<string, string>, status = 'enabled'): Promise<string> {
  const d = await tempDir('kiln-binfmt-');
  cleanups.push(d.cleanup);
  await writeFile(join(d.path, 'status'), `${status}\n`);
  await writeFile(join(d.path, 'register'), '');
  for (const [name, text] of Object.entries(entries)) await writeFile(join(d.path, name), text);
  return d.path;
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isKilnError(e) && e.code === 'UNSUPPORTED') return e.message;
    throw e;
  }
  throw new Error('expected an UNSUPPORTED error');
}

describe('emulation detection', () => {
  it('reads architectures from ELF magics', () => {
    expect(architectureOfMagic('7f454c460201010000000000000000000200b700')).toBe('arm64');
    expect(architectureOfMagic('7f454c4601010100000000000000000002002800')).toBe('arm');
    expect(architectureOfMagic('7f454c4602020100000000000000000000020016')).toBe('s390x');
    expect(architectureOfMagic('504b0304')).toBeUndefined();
    const h = parseBinfmtEntry('qemu-aarch64', AARCH64);
    expect(h).toEqual({ name: 'qemu-aarch64', enabled: true, interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P', flags: 'PF', architecture: 'arm64' });
    expect(parseBinfmtEntry('jar', JAR).architecture).toBeUndefined();
  });

  it('runs the host and its 32-bit mode natively', async () => {
    const native = await nativePlatforms(HOST);
    expect(native).toContainEqual({ os: 'linux', architecture: 'amd64' });
    expect(native).toContainEqual({ os: 'linux', architecture: '386' });
    const empty = await binfmtView({});
    expect(await executionFor(parsePlatform('linux/386'), { host: HOST, binfmt: empty })).toEqual({ how: 'native' });
  });

  it('uses an enabled handler with the F flag', async () => {
    const dir = await binfmtView({ 'qemu-aarch64': AARCH64, 'qemu-arm': ARM, jar: JAR });
    const r = await executionFor(parsePlatform('arm64/v8'), { host: HOST, binfmt: dir });
    expect(r.how === 'emulated' && r.handler.name).toBe('qemu-aarch64');
    const arm = await executionFor(parsePlatform('linux/arm/v6'), { host: HOST, binfmt: dir });
    expect(arm.how === 'emulated' && arm.handler.name).toBe('qemu-arm');
    expect((await readBinfmt(dir)).handlers.map((h) => h.name)).toEqual(['jar', 'qemu-aarch64', 'qemu-arm']);
  });

  it('says exactly what to install and enable when a platform cannot run', async () => {
    const empty = await binfmtView({});
    const none = await failure(executionFor(parsePlatform('linux/s390x'), { host: HOST, binfmt: empty }));
    expect(none).toContain('no binfmt_misc handler runs s390x binaries');
    expect(none).toContain('install qemu-user-static and binfmt-support');
    expect(none).toContain('update-binfmts --enable qemu-s390x');
    expect(none).not.toContain('\n');

    const disabled = await binfmtView({ 'qemu-s390x': S390X.replace('enabled', 'disabled') });
    expect(await failure(executionFor(parsePlatform('linux/s390x'), { host: HOST, binfmt: disabled }))).toMatch(/handler qemu-s390x is disabled: update-binfmts --enable qemu-s390x$/);

    // without F the interpreter path is looked up inside the sandbox's root, where it does not exist
    const unfixed = await binfmtView({ 'qemu-aarch64': AARCH64.replace('flags: PF', 'flags: P') });
    expect(await failure(executionFor(parsePlatform('linux/arm64'), { host: HOST, binfmt: unfixed }))).toContain('lacks the F (fix-binary) flag');

    const off = await binfmtView({ 'qemu-aarch64': AARCH64 }, 'disabled');
    expect(await failure(executionFor(parsePlatform('linux/arm64'), { host: HOST, binfmt: off }))).toContain('binfmt_misc is disabled');

    const unmounted = await tempDir('kiln-binfmt-');
    cleanups.push(unmounted.cleanup);
    await mkdir(join(unmounted.path, 'x'));
    expect(await failure(executionFor(parsePlatform('linux/arm64'), { host: HOST, binfmt: unmounted.path }))).toContain('mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc');

    expect(await failure(executionFor(parsePlatform('windows/amd64'), { host: HOST, binfmt: empty }))).toContain('Linux binaries only');
  });
});
