import { request } from 'undici';
import { describe, expect, inject, it } from 'vitest';

describe('global setup registries', () => {
  const reg = inject('registry');

  it('anonymous registry answers /v2/ with 200', async () => {
    const res = await request(`http://${reg.anon}/v2/`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });

  it('basic registry wants credentials and accepts kiln/secret', async () => {
    const no = await request(`http://${reg.basic}/v2/`);
    await no.body.dump();
    expect(no.statusCode).toBe(401);
    expect(String(no.headers['www-authenticate'])).toMatch(/^Basic /);
    const yes = await request(`http://${reg.basic}/v2/`, {
      headers: { authorization: `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}` },
    });
    await yes.body.dump();
    expect(yes.statusCode).toBe(200);
  });

  it('token registry accepts a JWT signed by the test token server', async () => {
    const no = await request(`http://${reg.token}/v2/`);
    await no.body.dump();
    expect(no.statusCode).toBe(401);
    expect(String(no.headers['www-authenticate'])).toContain(`realm="${reg.tokenServer}/token"`);
    const t = await request(`${reg.tokenServer}/token?service=${reg.tokenService}&scope=repository:x/y:pull,push`, {
      headers: { authorization: `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}` },
    });
    const { token } = (await t.body.json()) as { token: string };
    const yes = await request(`http://${reg.token}/v2/x/y/tags/list`, { headers: { authorization: `Bearer ${token}` } });
    const body = await yes.body.text();
    // authorised: the repository is unknown (404), not 401
    expect(yes.statusCode, body).toBe(404);
  });
});
