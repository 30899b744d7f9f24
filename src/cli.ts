import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveAuthKeys } from './auth/keys.ts';
import { mintToken } from './auth/tokens.ts';
import { loadConfig } from './config.ts';
import { isVoxError } from './errors.ts';
import { grantNames, type Grant } from './protocol/messages.ts';

/**
 * `voxlink` command line (bin/voxlink.js runs this through tsx):
 *   voxlink start                 run the server (same as npm start)
 *   voxlink token [options]       mint an access token with the server's key (same config/data dir)
 */
const usage = `Usage:
  voxlink start
  voxlink token --room <room|prefix*|*> --user <id> [--name <display name>]
                [--grants join,publish,subscribe,record,admin] [--ttl 1h] [--key-file ed25519-private.pem]

Token options:
  --room      room id, "prefix*" or "*"                 (default: *)
  --user      user id, the token's sub                  (required)
  --name      display name                              (default: the user id)
  --grants    comma-separated grants                    (default: join,publish,subscribe)
  --ttl       lifetime: seconds or 30m, 1h, 7d          (default: 1h)
  --key-file  Ed25519 private key (PKCS#8 PEM) for EdDSA deployments; HS256 uses the
              configured secret (VOXLINK_SECRET / config file) or the dev secret in the data dir.
`;

async function tokenCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      room: { type: 'string', default: '*' },
      user: { type: 'string' },
      name: { type: 'string' },
      grants: { type: 'string', default: 'join,publish,subscribe' },
      ttl: { type: 'string', default: '1h' },
      'key-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  if (!values.user) throw new UsageError('--user is required');
  const grants = values.grants.split(',').map((g) => g.trim()).filter((g) => g.length > 0);
  for (const grant of grants) {
    if (!(grantNames as readonly string[]).includes(grant)) throw new UsageError(`unknown grant "${grant}" (one of ${grantNames.join(', ')})`);
  }
  const ttl = /^\d+$/.test(values.ttl) ? Number(values.ttl) : values.ttl;
  if (typeof ttl === 'string' && !/^\d+\s*(s|sec|m|min|h|hr|d|day|w|week)s?$/i.test(ttl)) throw new UsageError(`bad --ttl "${ttl}"`);
  const config = loadConfig();
  let key: string | ReturnType<typeof createPrivateKey>;
  if (values['key-file']) {
    key = createPrivateKey(readFileSync(values['key-file'], 'utf8'));
  } else {
    const keys = resolveAuthKeys(config);
    if (keys.hs256Secret === undefined) throw new UsageError('the server verifies EdDSA tokens: pass --key-file with the Ed25519 private key');
    key = keys.hs256Secret;
  }
  const token = await mintToken({
    key,
    userId: values.user,
    name: values.name,
    room: values.room,
    grants: grants as Grant[],
    ttl,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
  });
  process.stdout.write(`${token}\n`);
}

class UsageError extends Error {}

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      await import('./main.ts');
      return;
    case 'token':
      await tokenCommand(rest);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    process.stderr.write(`voxlink: ${(err as Error).message}\n\n${usage}`);
    process.exit(64);
  }
  process.stderr.write(`voxlink: ${isVoxError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
  process.exit(1);
});
