/**
 * Join a room in the browser and hear it (docs/sdk.md "In the browser"): the signalling client
 * (`voxlink/client`) plus the media client (`voxlink/media`), the microphone published, each audio
 * slot played through an <audio> element. The token comes from your backend (examples/mint-token.ts).
 */
import { VoxClient, type RoomState } from 'voxlink/client';
import { BrowserMediaClient } from 'voxlink/media';

const params = new URLSearchParams(location.search);
const server = params.get('server') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const room = params.get('room') ?? 'demo';
const token = params.get('token') ?? '';

const $ = (id: string) => document.getElementById(id)!;
const status = (text: string) => ($('status').textContent = text);

let client: VoxClient | null = null;
let media: BrowserMediaClient | null = null;

function showPeople(state: RoomState): void {
  $('people').replaceChildren(
    ...[...state.participants.values()].map((p) => Object.assign(document.createElement('li'), { textContent: `${p.name}${p.muted ? ' (muted)' : ''}` })),
  );
}

async function join(): Promise<void> {
  ($('join') as HTMLButtonElement).disabled = true;
  status('Joining…');
  try {
    // getUserMedia needs a secure context: https, or http on localhost.
    const microphone = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0] ?? null;
    client = new VoxClient();
    media = new BrowserMediaClient({ room, microphone, signal: { send: (m) => client!.sendMedia(m), sendPeer: (m) => client!.sendMedia(m) } });
    client.on('media', (m) => void media!.handle(m));
    client.on('ice_servers', (servers) => media!.setIceServers(servers));
    client.on('state', (state) => status(state === 'connected' || state === 'resumed' ? `In ${room}` : state));
    client.on('room', ({ room: state }) => showPeople(state));
    client.on('participant_joined', () => showPeople(client!.room(room)!));
    client.on('participant_left', () => showPeople(client!.room(room)!));
    client.on('recording', ({ recording }) => status(recording ? `In ${room} — this call is being recorded` : `In ${room}`));
    client.on('error', (err) => status(err.message)); // one sentence for people; err.code for programs
    // One remote track per audio slot; the server switches speakers inside it (no renegotiation).
    media.on('track', (slot, track) => {
      const audio = Object.assign(new Audio(), { srcObject: new MediaStream([track]), autoplay: true });
      audio.dataset.slot = String(slot);
      $('audio').append(audio);
      void audio.play();
    });

    await client.connect(server, token);
    media.setIceServers(client.iceServers);
    // direct: the media client (with sendPeer) connects straight to the other participant in p2p/auto rooms.
    showPeople(await client.join(room, { direct: true }));
    status(`In ${room}`);
    ($('leave') as HTMLButtonElement).disabled = false;
  } catch (err) {
    status((err as Error).message);
    await leave();
  }
}

async function leave(): Promise<void> {
  media?.close();
  await client?.disconnect();
  media = null;
  client = null;
  $('audio').replaceChildren();
  ($('join') as HTMLButtonElement).disabled = false;
  ($('leave') as HTMLButtonElement).disabled = true;
}

$('join').addEventListener('click', () => void join());
$('leave').addEventListener('click', () => void leave().then(() => status('Left')));
addEventListener('pagehide', () => void client?.disconnect());
