/**
 * Minting VoxLink access tokens on your backend (docs/sdk.md "Tokens"). A token is a JWT signed
 * with the server's secret (`auth.hs256Secret` / VOXLINK_SECRET), naming the user and their grants
 * per room. Mint them where the secret lives — never in the browser — and hand them to clients.
 *
 *   VOXLINK_SECRET=… node --import tsx examples/mint-token.ts <user> <room> [grants] [--jose]
 *
 * prints one token (grants default to join,publish,subscribe; `--jose` mints it with jose alone).
 */
import { createSecretKey } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';
import { mintToken } from 'voxlink/auth';

type Grant = 'join' | 'publish' | 'subscribe' | 'record' | 'admin';

/** With VoxLink's helper: the claims and their validation are the server's own. */
export function tokenFor(secret: string, userId: string, room: string, grants: Grant[], name = userId): Promise<string> {
  return mintToken({ key: secret, userId, name, room, grants, ttl: '1h' });
}

/**
 * The same token with jose alone (any JWT library will do): HS256, `sub`, `name`, `rooms`
 * (room id, "prefix*" or "*", with grants) and `exp` — the claims docs/protocol.md describes.
 */
export function tokenWithJose(secret: string, userId: string, room: string, grants: Grant[], name = userId): Promise<string> {
  return new SignJWT({ name, rooms: [{ room, grants }] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(createSecretKey(Buffer.from(secret, 'utf8')));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [user, room, grantList = 'join,publish,subscribe'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const secret = process.env.VOXLINK_SECRET;
  if (!user || !room || !secret) {
    console.error('usage: VOXLINK_SECRET=… node --import tsx examples/mint-token.ts <user> <room> [grants] [--jose]');
    process.exit(2);
  }
  const grants = grantList.split(',') as Grant[];
  const mint = process.argv.includes('--jose') ? tokenWithJose : tokenFor;
  console.log(await mint(secret, user, room, grants));
}
