import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { isVoxError } from '../../src/errors.ts';

const load = (env: Record<string, string>) => loadConfig({ env: { VOXLINK_SECRET: 'x'.repeat(32), ...env } });

function configError(env: Record<string, string>): string {
  try {
    load(env);
  } catch (err) {
    if (isVoxError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('turn config', () => {
  it('store redis/postgres need their URL and the realm, named in the error', () => {
    expect(configError({ VOXLINK_TURN_STORE: 'redis' })).toMatch(/turn\.redisUrl: required with turn\.store redis[\s\S]*turn\.realm: required/);
    expect(configError({ VOXLINK_TURN_STORE: 'postgres', VOXLINK_TURN_REALM: 'r' })).toMatch(/turn\.postgresUrl: required with turn\.store postgres/);
    expect(configError({ VOXLINK_TURN_STORE: 'mongo' })).toMatch(/turn\.store/);
    const ok = load({ VOXLINK_TURN_STORE: 'redis', VOXLINK_TURN_REALM: 'r', VOXLINK_TURN_REDIS_URL: 'redis://127.0.0.1:6379/2', VOXLINK_TURN_USER_QUOTA: '4' });
    expect(ok.turn).toMatchObject({ store: 'redis', realm: 'r', redisUrl: 'redis://127.0.0.1:6379/2', userQuota: 4, refreshSec: 10, stats: { userLabels: true } });
  });

  it('turn.urls take turn: (udp/tcp) and turns: (tcp) URLs only', () => {
    const urls = 'turn:t.example:3478?transport=udp,turn:t.example:3478?transport=tcp,turns:t.example:5349?transport=tcp,turn:[2001:db8::1]:3478';
    expect(load({ VOXLINK_TURN_URLS: urls }).turn.urls).toHaveLength(4);
    expect(configError({ VOXLINK_TURN_URLS: 'stun:t.example:3478' })).toMatch(/turn\.urls\.0/);
    expect(configError({ VOXLINK_TURN_URLS: 'turn:t.example:3478?transport=sctp' })).toMatch(/turn\.urls\.0/);
    expect(configError({ VOXLINK_TURN_URLS: 'turns:t.example:5349?transport=udp' })).toMatch(/turn\.urls\.0/);
  });
});
