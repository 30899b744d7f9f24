import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { resolveAuthKeys } from '../../src/auth/index.ts';
import { loadConfig, recordingDirOf } from '../../src/config.ts';

/**
 * The files in deploy/ as an operator installs them: the systemd unit passes `systemd-analyze
 * verify` without a warning, and the production config plus the env file the unit reads load
 * through the server's own config loader (src/config.ts) into what the unit expects.
 */
const deploy = (file: string) => fileURLToPath(new URL(`../../deploy/${file}`, import.meta.url));

/** systemd's EnvironmentFile= syntax as the example uses it: KEY=value lines, # comments. */
function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

function unitSetting(unit: string, key: string): string[] {
  return [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);
}

describe('deploy/voxlink.service', () => {
  const unit = readFileSync(deploy('voxlink.service'), 'utf8');

  it('passes systemd-analyze verify with nothing to say', () => {
    const run = spawnSync('systemd-analyze', ['verify', deploy('voxlink.service')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('runs the bundle from the release directory as an unprivileged user, with the config and secrets the docs name', () => {
    expect(unitSetting(unit, 'ExecStart')).toEqual(['/usr/bin/node --max-semi-space-size=2 dist/src/main.js']);
    expect(unitSetting(unit, 'User')).toEqual(['voxlink']);
    expect(unitSetting(unit, 'Environment')).toContain('VOXLINK_CONFIG=/etc/voxlink/voxlink.json');
    expect(unitSetting(unit, 'EnvironmentFile')).toEqual(['/etc/voxlink/voxlink.env']);
    expect(unitSetting(unit, 'StateDirectory')).toEqual(['voxlink']);
    for (const hardening of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=']) {
      expect(unit).toMatch(new RegExp(`^${hardening}$`, 'm'));
    }
    // V8's JIT and WebAssembly need W+X pages: this one would kill the process at start.
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
    // The security score is what systemd computes; keep it in the "OK" band or better.
    // systemd's own exposure score (0 = locked down, 10 = unprotected); 1.6 when written.
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', deploy('voxlink.service')], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for .*: ([\d.]+)/.exec(security.stdout)?.[1]);
    expect(score).toBeLessThan(2.5);
  });
});

describe('deploy/voxlink.production.json', () => {
  const env: Record<string, string> = { VOXLINK_CONFIG: deploy('voxlink.production.json'), ...readEnvFile(deploy('voxlink.env.example')) };

  it('loads through src/config.ts with the env file: production mode, the unit’s state directory, secrets from the env', () => {
    const config = loadConfig({ env });
    expect(config.auth.devMode).toBe(false);
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: 7880 });
    expect(config.dataDir).toBe('/var/lib/voxlink'); // StateDirectory=voxlink
    expect(recordingDirOf(config)).toBe('/var/lib/voxlink/recordings');
    expect(config.auth.hs256Secret).toBe(env.VOXLINK_SECRET);
    expect(config.turn.secret).toBe(env.VOXLINK_TURN_SECRET);
    expect(config.metrics.token).toBe(env.VOXLINK_METRICS_TOKEN);
    expect(config.media.announcedIp).not.toBe('127.0.0.1');
    expect(resolveAuthKeys(config)).toMatchObject({ source: expect.any(String) });
    // The JSON holds no secret: they come from the env file only.
    expect(readFileSync(deploy('voxlink.production.json'), 'utf8')).not.toMatch(/secret"|token"/i);
  });

  it('without the env file the server refuses to start instead of falling back to dev tokens', () => {
    const config = loadConfig({ env: { VOXLINK_CONFIG: env.VOXLINK_CONFIG } });
    expect(config.auth.devMode).toBe(false);
    expect(() => resolveAuthKeys(config)).toThrow(/no auth.hs256Secret or auth.eddsaPublicKey configured and dev mode is off/);
  });

  it('has no key the schema does not know', () => {
    const raw = JSON.parse(readFileSync(deploy('voxlink.production.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    const parsed = loadConfig({ env }) as unknown as Record<string, Record<string, unknown>>;
    // zod drops unknown keys silently; a typo in the example would otherwise go unnoticed.
    for (const [section, value] of Object.entries(raw)) {
      if (typeof value !== 'object') continue;
      for (const key of Object.keys(value)) expect(parsed[section], `${section}.${key}`).toHaveProperty(key);
    }
  });
});
