import { describe, expect, it } from 'vitest';
import { startTestServer } from './harness.ts';

describe('/metrics', () => {
  it('is open by default and serves VoxLink series', async () => {
    const ts = await startTestServer();
    try {
      const res = await fetch(`http://127.0.0.1:${ts.server.port}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^voxlink_sessions\{state="connected"\} /m);
    } finally {
      await ts.close();
    }
  });

  it('with metrics.token, answers 401 without the bearer token or with a wrong one, 200 with it', async () => {
    const token = 'scrape-token-0123456789abcdef';
    const ts = await startTestServer({ metrics: { token } });
    const url = `http://127.0.0.1:${ts.server.port}/metrics`;
    try {
      const none = await fetch(url);
      expect(none.status).toBe(401);
      expect(await none.json()).toMatchObject({ error: 'AUTH_FAILED' });
      expect((await fetch(url, { headers: { authorization: 'Bearer scrape-token-0123456789abcdeX' } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: 'Bearer short' } })).status).toBe(401);
      const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/^voxlink_sessions/m);
    } finally {
      await ts.close();
    }
  });
});
