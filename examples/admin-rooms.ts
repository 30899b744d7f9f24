/**
 * The admin API from a backend (docs/sdk.md "Admin API", docs/api.md): list the rooms with who is
 * in them, optionally set a room's metadata or end it. Mints its own short-lived admin token with
 * the server's secret.
 *
 *   VOXLINK_SECRET=… node --import tsx examples/admin-rooms.ts <http(s)://server> [room] [--metadata <text>] [--end]
 *
 * prints one line per room (and per participant), then what it changed.
 */
import { pathToFileURL } from 'node:url';
import { AdminApiError, AdminClient } from 'voxlink/admin';
import { mintToken } from 'voxlink/auth';

export async function adminReport(url: string, secret: string, room?: string, metadata?: string, end = false): Promise<string[]> {
  const token = () => mintToken({ key: secret, userId: 'admin-example', room: '*', grants: ['admin'], ttl: '10m' });
  const admin = new AdminClient({ url, token });
  const lines: string[] = [];
  for (const r of await admin.listRooms()) {
    lines.push(`room ${r.room} (${r.mode}): ${r.participants} in it${r.recording ? ', recording' : ''}${r.metadata ? `, metadata ${r.metadata}` : ''}`);
    for (const p of await admin.listParticipants(r.room)) lines.push(`  ${p.name} (${p.userId})${p.muted ? ' muted' : ''}`);
  }
  if (room !== undefined && metadata !== undefined) lines.push(`metadata of ${room}: ${(await admin.updateRoomMetadata(room, metadata)).metadata}`);
  if (room !== undefined && end) lines.push(`ended ${room}: ${await admin.endRoom(room)} removed`);
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const metadata = flag('--metadata');
  const end = args.includes('--end');
  const [url, room] = args.filter((a) => !a.startsWith('--'));
  const secret = process.env.VOXLINK_SECRET;
  if (!url || !secret) {
    console.error('usage: VOXLINK_SECRET=… node --import tsx examples/admin-rooms.ts <http(s)://server> [room] [--metadata <text>] [--end]');
    process.exit(2);
  }
  adminReport(url, secret, room, metadata, end).then(
    (lines) => console.log(lines.join('\n')),
    (err: unknown) => {
      console.error(err instanceof AdminApiError ? `${err.message} (HTTP ${err.status} ${err.serverCode ?? ''})` : err);
      process.exit(1);
    },
  );
}
