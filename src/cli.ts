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
 *   voxlink turn rotate-secret    add a TURN secret to the store coturn reads, retire the others
 *   voxlink cluster [--json]      the cluster's live nodes and rooms (cluster.redisUrl)
 */
const usage = `Usage:
  voxlink start [--config <file>] [--data-dir <dir>]
  voxlink token --room <room|prefix*|*> --user <id> [--name <display name>]
                [--grants join,publish,subscribe,record,admin] [--ttl 1h] [--key-file ed25519-private.pem]
                [--config <file>] [--data-dir <dir>]
  voxlink turn rotate-secret [--retire-after <seconds>] [--config <file>] [--data-dir <dir>]
  voxlink cluster [--json] [--config <file>]

cluster (cluster.redisUrl / VOXLINK_REDIS_URL; docs/cluster.md):
  Lists the live nodes (id, URL, participants, rooms, version, draining) and every room with its
  owner node and participant count, read from the cluster's Redis. --json prints one JSON object.

From a checkout: npx voxlink …   From the bundle: node dist/src/cli.js …

Both read the configuration the way the server does (defaults, then the file named by --config or
VOXLINK_CONFIG, then VOXLINK_* variables), so a token is signed with the key the server checks.
--data-dir overrides dataDir (VOXLINK_DATA_DIR), where a dev server keeps its generated secret.

Token options:
  --room      room id, "prefix*" or "*"                 (default: *)
  --user      user id, the token's sub                  (required)
  --name      display name                              (default: the user id)
  --grants    comma-separated grants                    (default: join,publish,subscribe)
  --ttl       lifetime: seconds or 30m, 1h, 7d          (default: 1h)
  --key-file  Ed25519 private key (PKCS#8 PEM) for EdDSA deployments; HS256 uses the
              configured secret (VOXLINK_SECRET / config file) or the dev secret in the data dir.

turn rotate-secret (turn.store redis or postgres; docs/turn.md):
  Adds a new TURN REST secret to coturn's user DB; running servers sign new credentials with it
  from their next refresh (turn.refreshSec). Every older secret keeps working until it is removed
  --retire-after seconds from now (default: turn.ttlSec + 2 × turn.refreshSec, so credentials
  already handed out stay valid for their whole lifetime).
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
      ...configOptions,
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
  if (typeof ttl === 'string' && !/^\d+\s*(s|sec|m|min|h|hr|d|day|w|week)s?$/i.test(ttl)) throw new UsageError(`bad --ttl "${ttl}" (seconds, or 30m, 1h, 7d)`);
  if (ttl === 0 || (typeof ttl === 'string' && /^0+\s*[a-z]/i.test(ttl))) throw new UsageError(`--ttl ${values.ttl} would mint a token that has already expired: give a positive lifetime`);
  const config = cliConfig(values);
  let key: string | ReturnType<typeof createPrivateKey>;
  if (values['key-file']) {
    key = createPrivateKey(readFileSync(values['key-file'], 'utf8'));
  } else {
    const keys = resolveAuthKeys(config, { createDevSecret: false });
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

async function turnCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'rotate-secret') throw new UsageError(sub === undefined ? 'turn: missing subcommand (rotate-secret)' : `unknown turn subcommand "${sub}"`);
  const { values } = parseArgs({
    args: rest,
    options: { 'retire-after': { type: 'string' }, ...configOptions, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const config = cliConfig(values);
  const { turn } = config;
  if (turn.store === 'static') {
    throw new UsageError(
      'turn.store is static: the secret lives in turn.secret and coturn.conf; set turn.store to redis or postgres (docs/turn.md) to rotate without a restart',
    );
  }
  const defaultRetire = turn.ttlSec + 2 * turn.refreshSec;
  const retireRaw = values['retire-after'];
  if (retireRaw !== undefined && !/^\d+$/.test(retireRaw)) throw new UsageError(`bad --retire-after "${retireRaw}" (whole seconds)`);
  const retireAfterSec = retireRaw === undefined ? defaultRetire : Number(retireRaw);
  if (!Number.isInteger(retireAfterSec) || retireAfterSec < 0) throw new UsageError(`bad --retire-after "${values['retire-after']}" (whole seconds)`);
  const { openSecretStore } = await import('./turn/service.ts');
  const { rotateSecret } = await import('./turn/secrets.ts');
  const store = await openSecretStore(turn);
  try {
    const { retired, retireAt } = await rotateSecret(store, { retireAfterSec });
    // The secret itself is never printed: coturn and VoxLink both read it from the store.
    process.stdout.write(
      `added a TURN secret to ${store.kind} (realm ${store.realm}); ` +
        (retired.length === 0 ? 'there was no older secret\n' : `${retired.length} older secret(s) stay valid until ${new Date(retireAt).toISOString()}, then a running server removes them\n`),
    );
    if (retireAfterSec < turn.ttlSec) {
      process.stderr.write(`voxlink: warning: --retire-after ${retireAfterSec} is shorter than turn.ttlSec ${turn.ttlSec}: credentials already handed out stop working early\n`);
    }
  } finally {
    await store.close();
  }
}

async function clusterCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, ...configOptions, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const config = cliConfig(values);
  if (config.cluster.redisUrl === undefined) throw new UsageError('cluster.redisUrl (VOXLINK_REDIS_URL) is not set: this VoxLink is a single node');
  const { openClusterRedis, readNodes, readRooms } = await import('./cluster/store.ts');
  const redis = openClusterRedis(config.cluster.redisUrl, { enableOfflineQueue: true, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    const nodes = await readNodes(redis);
    const rooms = await readRooms(redis, nodes);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ nodes, rooms }, null, 2)}\n`);
      return;
    }
    const now = Date.now();
    process.stdout.write(`${nodes.length} live node(s)\n`);
    for (const n of nodes) {
      process.stdout.write(
        `  ${n.id}  ${n.url}  participants ${n.load}  rooms ${n.rooms}  v${n.version}${n.draining ? '  DRAINING' : ''}  seen ${((now - n.updatedAt) / 1000).toFixed(1)} s ago\n`,
      );
    }
    process.stdout.write(`${rooms.length} room(s)\n`);
    for (const r of rooms) process.stdout.write(`  ${r.room}  on ${r.node}  participants ${r.participants}  ${r.mode}${r.recording ? '  recording' : ''}\n`);
  } catch (err) {
    throw new Error(`cannot read the cluster registry: ${(err as Error).message}`);
  } finally {
    redis.disconnect();
  }
}

class UsageError extends Error {}

const configOptions = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
} as const;

/** The server's configuration, with --config / --data-dir applied as VOXLINK_CONFIG / VOXLINK_DATA_DIR would be. */
function cliConfig(values: { config?: string; 'data-dir'?: string }): ReturnType<typeof loadConfig> {
  const env = { ...process.env };
  if (values.config !== undefined) env.VOXLINK_CONFIG = values.config;
  if (values['data-dir'] !== undefined) env.VOXLINK_DATA_DIR = values['data-dir'];
  return loadConfig({ env });
}

/** `voxlink start [--config f] [--data-dir d]`: the same as VOXLINK_CONFIG / VOXLINK_DATA_DIR. */
function startOptions(args: string[]): void {
  const { values } = parseArgs({ args, options: configOptions, strict: true });
  if (values.config !== undefined) process.env.VOXLINK_CONFIG = values.config;
  if (values['data-dir'] !== undefined) process.env.VOXLINK_DATA_DIR = values['data-dir'];
}

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      startOptions(rest);
      await import('./main.ts');
      return;
    case 'token':
      await tokenCommand(rest);
      return;
    case 'turn':
      await turnCommand(rest);
      return;
    case 'cluster':
      await clusterCommand(rest);
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
