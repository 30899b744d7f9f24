import { randomBytes, createSecretKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VoxError } from '../errors.ts';
import type { VoxConfig } from '../config.ts';
import type { VerifyKey } from './tokens.ts';

/** Key material a server verifies with, and (HS256 only) signs dev/CLI tokens with. */
export interface AuthKeys {
  verify: VerifyKey;
  /** HS256 secret as text, when the server holds it (configured or dev). */
  hs256Secret?: string;
  /** Where the secret came from, for the start-up log (never the secret itself). */
  source: 'config' | 'dev-secret-file' | 'dev-secret-generated' | 'eddsa-public-key';
  devSecretPath?: string;
}

export const DEV_SECRET_FILE = 'dev-secret';
export const TURN_SECRET_FILE = 'turn-secret';

/**
 * Read a secret kept in the data dir, or create it (32 random bytes, hex, mode 0600). The data dir is
 * gitignored; it lets a dev server and `voxlink token` agree on a secret without any setup.
 */
export function dataDirSecret(dataDir: string, file: string, create = true): { secret: string; path: string; generated: boolean } {
  const path = join(dataDir, file);
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length >= 32) return { secret, path, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new VoxError('AUTH_KEY_MISSING', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (!create) {
    throw new VoxError(
      'AUTH_KEY_MISSING',
      `no dev secret at ${path}: the server creates it when it first starts in dev mode. Point at the server's data dir ` +
        '(--data-dir, VOXLINK_DATA_DIR) or config file (--config, VOXLINK_CONFIG), or run from the directory the server runs in.',
    );
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return { secret, path, generated: true };
}

/**
 * The keys `config` verifies with. `createDevSecret: false` (the CLI) reads the dev secret but never
 * makes one: a token signed with a fresh secret that no server knows would only be rejected later.
 */
export function resolveAuthKeys(config: VoxConfig, options: { createDevSecret?: boolean } = {}): AuthKeys {
  const { auth } = config;
  const common = { issuer: auth.issuer, audience: auth.audience, clockToleranceSec: auth.clockToleranceSec };
  if (auth.hs256Secret !== undefined) {
    return {
      verify: { alg: 'HS256', key: secretKey(auth.hs256Secret), ...common },
      hs256Secret: auth.hs256Secret,
      source: 'config',
    };
  }
  if (auth.eddsaPublicKey !== undefined) {
    let key: KeyObject;
    try {
      key = createPublicKey(auth.eddsaPublicKey);
    } catch (err) {
      throw new VoxError('CONFIG_INVALID', `auth.eddsaPublicKey: not a PEM public key (${(err as Error).message})`, { cause: err });
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new VoxError('CONFIG_INVALID', `auth.eddsaPublicKey: expected an Ed25519 key, got ${key.asymmetricKeyType}`);
    }
    return { verify: { alg: 'EdDSA', key, ...common }, source: 'eddsa-public-key' };
  }
  if (!auth.devMode) {
    throw new VoxError('AUTH_KEY_MISSING', 'no auth.hs256Secret or auth.eddsaPublicKey configured and dev mode is off');
  }
  const dev = dataDirSecret(config.dataDir, DEV_SECRET_FILE, options.createDevSecret ?? true);
  return {
    verify: { alg: 'HS256', key: secretKey(dev.secret), ...common },
    hs256Secret: dev.secret,
    source: dev.generated ? 'dev-secret-generated' : 'dev-secret-file',
    devSecretPath: dev.path,
  };
}

function secretKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, 'utf8'));
}
