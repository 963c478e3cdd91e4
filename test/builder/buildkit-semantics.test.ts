import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bench, cachedSteps, BASE, type Bench } from './helpers.js';
import { DEFAULT_PATH } from '../../src/image/config.js';

/**
 * Image config and build-arg behaviour that must match BuildKit's Dockerfile
 * frontend, each built through kiln's build path and checked in the image.
 */
let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

describe('config defaults (BuildKit: emptyImage and "make sure that PATH is always set")', () => {
  it('FROM scratch gets Env [PATH=<default>] and WorkingDir "/"', async () => {
    const ctx = await b.context({ Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' });
    const { result } = await b.build(ctx, { tags: ['localhost/sem/scratch:1'] });
    expect(result.config.config?.Env).toEqual([`PATH=${DEFAULT_PATH}`]);
    expect(result.config.config?.WorkingDir).toBe('/');
  });

  it('ENV PATH in a scratch stage replaces the default; a stage FROM it keeps it', async () => {
    const ctx = await b.context({ Dockerfile: 'FROM scratch AS a\nENV PATH=/opt/bin A=1\nFROM a\nCOPY f /f\n', f: 'x' });
    const { result } = await b.build(ctx, { tags: ['localhost/sem/scratch:2'] });
    expect(result.config.config?.Env).toEqual(['PATH=/opt/bin', 'A=1']);
    expect(result.config.config?.WorkingDir).toBe('/');
  });

  it('a base image without PATH gets the default appended; its WorkingDir stays unset', async () => {
    const st = await b.store();
    const base = await st.getImage(BASE);
    const config = structuredClone(base.config);
    config.config = { ...config.config, Env: ['ONLY=1'] };
    await st.putImage({ config, layers: [...base.layers] }, { ref: 'localhost/sem/nopath:1' });
    const ctx = await b.context({ Dockerfile: 'FROM localhost/sem/nopath:1\nRUN echo "$PATH" > /path\n' });
    const { result } = await b.build(ctx, { tags: ['localhost/sem/nopath:2'] });
    expect(result.config.config?.Env).toEqual(['ONLY=1', `PATH=${DEFAULT_PATH}`]);
    expect(result.config.config?.WorkingDir).toBeUndefined();
    expect(await b.read('localhost/sem/nopath:2', '/path')).toBe(`${DEFAULT_PATH}\n`);
  });
});

describe('ARGs (Docker docs, Build variables; BuildKit dockerfile2llb)', () => {
  it('a stage FROM another stage inherits its ARG declarations and values; ARGs never reach Env', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS base
ARG FOO=parent
ARG BAR
ARG UNSET
RUN echo "$FOO" > /foo
FROM base AS child
RUN echo "$FOO/$BAR/\${UNSET-unset}" > /child
FROM child
ARG FOO=grandchild
RUN echo "$FOO/$BAR" > /grandchild
`,
    });
    const { result } = await b.build(ctx, { tags: ['localhost/sem/args:1'], buildArgs: { BAR: 'b' } });
    expect(await b.read('localhost/sem/args:1', '/child')).toBe('parent/b/unset\n');
    expect(await b.read('localhost/sem/args:1', '/grandchild')).toBe('grandchild/b\n');
    const env = result.config.config?.Env ?? [];
    expect(env.some((e) => /^(FOO|BAR|UNSET)=/.test(e))).toBe(false);
    // BuildKit records the inherited ARGs of a RUN in its history (`|N K=V …`), one declared without a value too
    const childRun = result.config.history!.find((h) => h.created_by?.includes('> /child'));
    expect(childRun?.created_by).toMatch(/^RUN \|3 FOO=parent BAR=b UNSET= /);
  });

  it('a stage FROM an unrelated stage does not see the other\'s ARGs', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS a\nARG FOO=a\nFROM ${BASE}\nRUN echo "[\${FOO-}]" > /foo\n`,
    });
    await b.build(ctx, { tags: ['localhost/sem/args:2'] });
    expect(await b.read('localhost/sem/args:2', '/foo')).toBe('[]\n');
  });

  it('a default is not evaluated when --build-arg sets the ARG (`${FOO:?}` in an overridden default is fine)', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nARG FOO\nARG BAR=\${FOO:?foo missing}\nRUN echo "$BAR" > /bar\n` });
    await b.build(ctx, { tags: ['localhost/sem/args:3'], buildArgs: { BAR: '123' } });
    expect(await b.read('localhost/sem/args:3', '/bar')).toBe('123\n');
    // without the build arg the default is evaluated, and fails as BuildKit's does
    const quoted = await b.context({ Dockerfile: `FROM ${BASE}\nARG FOO\nARG BAR="\${FOO:?foo missing}"\nRUN echo "$BAR" > /bar\n` });
    await b.build(quoted, { tags: ['localhost/sem/args:3'], buildArgs: { BAR: '456' } });
    expect(await b.read('localhost/sem/args:3', '/bar')).toBe('456\n');
    await expect(b.build(quoted, { tags: ['localhost/sem/args:4'] })).rejects.toThrow(/foo missing/);
  });

  it('the same holds for global ARGs before the first FROM', async () => {
    const ctx = await b.context({ Dockerfile: `ARG FOO\nARG IMG=\${FOO:?foo missing}\nFROM \${IMG}\nRUN echo ok > /ok\n` });
    await b.build(ctx, { tags: ['localhost/sem/args:5'], buildArgs: { IMG: BASE } });
    expect(await b.read('localhost/sem/args:5', '/ok')).toBe('ok\n');
  });

  it('TARGETSTAGE is the --target name, or "default" without one', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS first\nARG TARGETSTAGE\nRUN echo "$TARGETSTAGE" > /stage\nFROM first AS Second\nRUN echo "$TARGETSTAGE" > /second\n`,
    });
    await b.build(ctx, { tags: ['localhost/sem/ts:1'], target: 'first' });
    expect(await b.read('localhost/sem/ts:1', '/stage')).toBe('first\n');
    await b.build(ctx, { tags: ['localhost/sem/ts:2'], target: 'Second' });
    expect(await b.read('localhost/sem/ts:2', '/stage')).toBe('Second\n');
    expect(await b.read('localhost/sem/ts:2', '/second')).toBe('Second\n');
    await b.build(ctx, { tags: ['localhost/sem/ts:3'] });
    expect(await b.read('localhost/sem/ts:3', '/second')).toBe('default\n');
  });

  it('proxy build args reach RUN in both spellings, and stay out of history, Env and the cache key', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN env | sort > /env\n` });
    const args = { http_proxy: 'http://127.0.0.1:3128', HTTPS_PROXY: 'http://127.0.0.1:3129', no_proxy: 'localhost', FTP_PROXY: 'ftp://x', all_proxy: 'socks5://y' };
    const { result } = await b.build(ctx, { tags: ['localhost/sem/proxy:1'], buildArgs: args });
    const seen = (await b.read('localhost/sem/proxy:1', '/env')).trim().split('\n').filter((l) => /_proxy=/i.test(l));
    expect(seen).toEqual([
      'ALL_PROXY=socks5://y', 'FTP_PROXY=ftp://x', 'HTTPS_PROXY=http://127.0.0.1:3129', 'HTTP_PROXY=http://127.0.0.1:3128', 'NO_PROXY=localhost',
      'all_proxy=socks5://y', 'ftp_proxy=ftp://x', 'http_proxy=http://127.0.0.1:3128', 'https_proxy=http://127.0.0.1:3129', 'no_proxy=localhost',
    ]);
    expect(JSON.stringify(result.config.history)).not.toMatch(/proxy/i);
    expect((result.config.config?.Env ?? []).some((e) => /proxy/i.test(e))).toBe(false);
    // another proxy is not another build: the RUN comes from the cache
    const again = await b.build(ctx, { tags: ['localhost/sem/proxy:2'], buildArgs: { http_proxy: 'http://127.0.0.1:9999' } });
    expect(cachedSteps(again.events)).toContain('RUN env | sort > /env');
  });
});
