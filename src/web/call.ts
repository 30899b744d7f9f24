import {
  TypedEmitter,
  VoxClient,
  type ConnectionState,
  type ParticipantInfo,
  type RoomState,
  type TokenSource,
} from '../client/index.ts';
import { BrowserMediaClient, type AudioPath, type MediaSignalChannel } from '../client/media/index.ts';
import { LevelMeter } from './level-meter.ts';

/**
 * One call of the demo page: the SDK's signalling client (VoxClient) and its media part
 * (BrowserMediaClient) wired together, the microphone, the slot tracks playing in <audio>
 * elements, and level meters. The view (app.ts) only reads it and calls its methods.
 *
 * Recovery is the SDK's: VoxClient resumes the session after a dropped WebSocket (media keeps
 * flowing meanwhile), re-joins on a fresh session when resume fails, and BrowserMediaClient asks
 * for an ICE restart on `media_reconnect` or a failed PeerConnection. Two gaps are covered here:
 * a media client per session (a re-join gets a new server peer), and a watchdog that asks for the
 * ICE restart again when the first request could not be sent (the WebSocket was down too).
 */

export interface Activity {
  at: Date;
  text: string;
  tone: 'info' | 'good' | 'warn' | 'bad';
}

export interface CallEvents {
  [event: string]: unknown[];
  /** Something the view shows changed (connection, media, participants, slots, mute). */
  change: [];
  activity: [entry: Activity];
  /** The call is over: left, removed from the room, or failed for good. */
  ended: [reason: string];
}

export interface CallOptions {
  /** ws(s)://host/ws */
  wsUrl: string;
  room: string;
  /** A token, or a function the SDK calls whenever it needs a fresh session (dev tokens). */
  token: TokenSource;
  /** enumerateDevices() deviceId of the microphone; default device when absent. */
  microphoneId?: string;
  /** Holds the slot <audio> elements: Chrome feeds remote WebRTC audio to WebAudio only while an element plays it. */
  audioContainer: HTMLElement;
}

export type MediaState = RTCPeerConnectionState;

interface SlotPlayback {
  audio: HTMLAudioElement;
  meter: LevelMeter;
}

const MEDIA_TROUBLE: Partial<Record<MediaState, string>> = {
  disconnected: 'Media interrupted',
  failed: 'Media connection failed',
  closed: 'Media closed',
};

/** A PeerConnection that stays disconnected/failed this long gets an ICE restart request. */
const MEDIA_STALL_MS = 4000;
/**
 * At a switch between the server and a direct link, the old path's elements play on until the new
 * path is heard, at most this long (the SDK keeps the old path open a little longer, OVERLAP_MS in
 * src/client/media/browser-media-client.ts). Also the longest a replaced slot element plays on.
 */
const HANDOVER_MS = 800;
/** At most one watchdog ICE restart request per this interval. */
const RESTART_RETRY_MS = 10_000;

export class Call extends TypedEmitter<CallEvents> {
  readonly roomId: string;
  readonly client: VoxClient;
  readonly #options: CallOptions;
  #context: AudioContext | null = null;
  #mic: MediaStreamTrack | null = null;
  #micMeter: LevelMeter | null = null;
  #media: BrowserMediaClient | null = null;
  readonly #slots: SlotPlayback[] = [];
  /** The previous path's elements during a switch (#handOver): they play until the new path is heard. */
  #handover: SlotPlayback[] = [];
  readonly #names = new Map<string, string>();
  /** The level (0…1) of each participant's last `speaking` event, for those no slot carries to us. */
  readonly #serverLevels = new Map<string, { level: number }>();
  #mediaState: MediaState = 'new';
  /** The PeerConnection whose state events we follow (BrowserMediaClient replaces it on a restart offer). */
  #watchedPeer: RTCPeerConnection | null = null;
  #mediaTroubleSince = 0;
  #lastRestartRequest = 0;
  #wasMediaConnected = false;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  #ended = false;
  #leaving = false;
  readonly #onOnline = (): void => {
    this.#note('Network is back', 'info');
    this.#checkMedia(true);
  };
  readonly #onOffline = (): void => this.#note('Network offline — the call will recover when it returns', 'warn');

  constructor(options: CallOptions) {
    super((error) => console.warn('demo listener failed', error));
    this.#options = options;
    this.roomId = options.room;
    this.client = new VoxClient({ clientInfo: { name: 'voxlink-demo', version: '0.1.0', platform: navigator.platform.slice(0, 64) || 'browser' } });
    this.#listen();
  }

  /** Microphone, audio, signalling, then the room. Rejects (and cleans up) when any step fails. */
  async start(): Promise<void> {
    try {
      this.#mic = await openMicrophone(this.#options.microphoneId);
      this.#context = new AudioContext();
      // Started from the Join click (a user gesture), so the autoplay policy lets it run.
      await this.#context.resume();
      this.#micMeter = new LevelMeter(this.#context, this.#mic);
      const session = await this.client.connect(this.#options.wsUrl, this.#options.token);
      this.#newMediaClient(session.iceServers);
      // The media client below connects directly in p2p/auto rooms (signal.sendPeer).
      await this.client.join(this.roomId, { direct: true });
    } catch (error) {
      await this.#teardown();
      throw error;
    }
    this.#watchdog = setInterval(() => this.#checkMedia(false), 1000);
    window.addEventListener('online', this.#onOnline);
    window.addEventListener('offline', this.#onOffline);
  }

  get connection(): ConnectionState {
    return this.client.state;
  }

  get mediaState(): MediaState {
    return this.#mediaState;
  }

  /** `direct` while a p2p/auto room's audio goes straight to the other participant, else `server`. */
  get audioPath(): AudioPath {
    return this.#media?.transport ?? 'server';
  }

  get room(): RoomState | undefined {
    return this.client.room(this.roomId);
  }

  get muted(): boolean {
    return this.room?.self?.muted ?? false;
  }

  /** Which slot (0-based) carries `participantId` to us, or -1. */
  slotOf(participantId: string): number {
    return this.room?.slots.find((s) => s.participantId === participantId)?.slot ?? -1;
  }

  /** Current level 0…1 per participant: ours from the microphone, the others' from the slot carrying them. */
  levels(): Map<string, number> {
    const levels = new Map<string, number>();
    const room = this.room;
    if (!room) return levels;
    if (this.#micMeter) levels.set(room.participantId, this.muted ? 0 : this.#micMeter.read());
    for (const { slot, participantId } of room.slots) {
      const playback = this.#slots[slot];
      if (participantId !== null && playback) levels.set(participantId, playback.meter.read());
    }
    // Everyone else reaches us mixed into one track (mix and hybrid rooms): while the server says
    // they speak, the mix track's live level (the level the server measured before it has played).
    const mix = this.#slots[this.mixTrack];
    const mixLevel = mix ? mix.meter.read() : undefined;
    for (const p of room.participants.values()) {
      if (levels.has(p.participantId)) continue;
      levels.set(p.participantId, p.speaking && !p.muted ? (mixLevel ?? this.#serverLevels.get(p.participantId)?.level ?? 0) : 0);
    }
    return levels;
  }

  /** The slot index of the mixed track (everyone the slots do not carry), or -1 in an `sfu` room. */
  get mixTrack(): number {
    const room = this.room;
    if (!room) return -1;
    if (room.mode === 'mix') return 0;
    if (room.mode === 'hybrid') return room.slots.length;
    return -1;
  }

  /** May we start and stop recordings here (the `record` grant)? */
  get canRecord(): boolean {
    return this.room?.self?.grants.includes('record') ?? false;
  }

  /** Start or stop recording the room; everyone in it is told (room.recording). */
  async setRecording(on: boolean): Promise<void> {
    await this.client.record(this.roomId, on ? 'start' : 'stop');
  }

  /**
   * The page is going away (tab closed, navigated off): leave at once, so the others do not watch
   * a "reconnecting" participant for the whole grace period. Synchronous sends only: the page may
   * be frozen as soon as this returns.
   */
  hangUp(): void {
    if (this.#ended) return;
    this.#leaving = true;
    try {
      if (this.client.state === 'connected' || this.client.state === 'resumed') void this.client.leave(this.roomId).catch(() => undefined);
    } catch {
      // the connection is already gone
    }
    void this.#end('You left the room');
  }

  async setMuted(muted: boolean): Promise<void> {
    // Stop sending at once (a disabled track sends silence), and tell the room (the router drops us too).
    const mic = this.#mic;
    if (mic) mic.enabled = !muted;
    try {
      if (muted) await this.client.mute(this.roomId);
      else await this.client.unmute(this.roomId);
    } catch (error) {
      // The room did not take it (e.g. reconnecting): keep the microphone as the room sees us.
      if (mic) mic.enabled = muted;
      throw error;
    }
  }

  /** Publishes another microphone without renegotiation (RTCRtpSender.replaceTrack). */
  async switchMicrophone(deviceId: string): Promise<void> {
    const next = await openMicrophone(deviceId || undefined);
    next.enabled = !this.muted;
    await this.#media?.setMicrophone(next);
    this.#mic?.stop();
    this.#micMeter?.close();
    this.#mic = next;
    if (this.#context) this.#micMeter = new LevelMeter(this.#context, next);
    this.#note(`Microphone: ${next.label || 'default'}`, 'info');
  }

  async leave(): Promise<void> {
    if (this.#ended) return;
    this.#leaving = true;
    try {
      if (this.client.state === 'connected' || this.client.state === 'resumed') await this.client.leave(this.roomId);
    } catch {
      // Leaving a room we are already out of (or over a dying connection) still ends the call below.
    }
    await this.#end('You left the room');
  }

  #listen(): void {
    const client = this.client;
    // A resume brings fresh TURN credentials; later peers (media reconnects) must use them.
    client.on('ice_servers', (servers) => this.#media?.setIceServers(servers));
    client.on('state', (state, previous) => {
      if (state === 'reconnecting') this.#note('Connection lost — reconnecting…', 'warn');
      else if (state === 'resumed') this.#note('Reconnected — session resumed', 'good');
      else if (state === 'connected' && previous === 'reconnecting') this.#note('Reconnected on a new session — rejoining', 'good');
      else if (state === 'failed') void this.#end('Connection failed');
      this.emit('change');
    });
    client.on('room', ({ room, reason }) => {
      if (room.id !== this.roomId) return;
      for (const p of room.participants.values()) this.#names.set(p.participantId, p.name);
      if (reason === 'rejoined') {
        // A fresh session means a fresh server peer: its offer (after `joined`) needs a fresh client.
        this.#newMediaClient(client.session?.iceServers ?? []);
        this.#note('Rejoined the room', 'good');
      } else if (reason === 'left' && !this.#leaving) {
        void this.#end('You are no longer in the room');
      }
      this.emit('change');
    });
    client.on('participant_joined', ({ room, participant }) => {
      if (room !== this.roomId) return;
      this.#names.set(participant.participantId, participant.name);
      this.#note(`${participant.name} joined`, 'info');
      this.emit('change');
    });
    client.on('recording', ({ room, recording }) => {
      if (room !== this.roomId) return;
      this.#note(recording ? 'This room is now being recorded' : 'Recording stopped', recording ? 'warn' : 'info');
      this.emit('change');
    });
    client.on('participant_left', ({ room, participantId, reason }) => {
      if (room !== this.roomId) return;
      this.#serverLevels.delete(participantId);
      this.#note(`${this.#names.get(participantId) ?? 'Someone'} left${reason === 'left' ? '' : ` (${reason})`}`, 'info');
      this.emit('change');
    });
    client.on('participant_updated', ({ room, participant, previous }) => {
      if (room !== this.roomId) return;
      if (previous && previous.muted !== participant.muted) this.#note(`${who(participant, this.room)} ${participant.muted ? 'muted' : 'unmuted'}`, 'info');
      this.emit('change');
    });
    client.on('speaking', (event) => {
      if (event.room !== this.roomId) return;
      this.#serverLevels.set(event.participantId, { level: event.speaking ? event.level : 0 });
      this.#feed({ op: 'speaking', room: event.room, participantId: event.participantId, speaking: event.speaking, level: event.level });
      this.emit('change');
    });
    client.on('slots', (event) => {
      if (event.room !== this.roomId) return;
      this.#feed({ op: 'slots', room: event.room, slots: event.slots.map((s) => ({ slot: s.slot, participantId: s.participantId })) });
      this.emit('change');
    });
    client.on('media', (message) => {
      if (message.room !== this.roomId) return;
      if (message.op === 'media_reconnect') this.#note(`Server asked for a media reconnect (${message.reason})`, 'warn');
      this.#feed(message);
    });
    client.on('error', (error) => this.#note(error.message, 'bad'));
  }

  #feed(message: Parameters<BrowserMediaClient['handle']>[0]): void {
    this.#media?.handle(message).catch((error: unknown) => this.#note(`Media negotiation failed: ${String(error)}`, 'bad'));
  }

  #newMediaClient(iceServers: RTCIceServer[]): void {
    this.#media?.close();
    const send = (message: Parameters<VoxClient['sendMedia']>[0]): void => {
      try {
        this.client.sendMedia(message);
      } catch {
        // The WebSocket is down; the watchdog repeats an ICE restart once it is back, and the
        // server's offer already carries its candidates, so a lost trickle candidate is harmless.
      }
    };
    const signal: MediaSignalChannel = { send, sendPeer: send };
    const media = new BrowserMediaClient({
      room: this.roomId,
      signal,
      microphone: this.#mic,
      rtcConfiguration: { iceServers },
    });
    media.on('track', (slot, track) => {
      this.#play(slot, track);
      this.#watchPeer();
    });
    media.on('transport', (path) => {
      this.#handOver(path);
      this.#note(path === 'direct' ? 'Audio now goes directly to the other participant' : 'Audio now goes through the server', 'info');
      this.#watchPeer();
      this.#checkMedia(false);
      this.emit('change');
    });
    media.on('reconnect', (reason) => {
      this.#lastRestartRequest = Date.now();
      this.#note(`Media reconnecting (${reason}) — ICE restart`, 'warn');
    });
    this.#media = media;
    this.#mediaState = 'new';
    this.#wasMediaConnected = false;
    this.#watchPeer();
  }

  /** Follows the current PeerConnection's state as it changes; a 1 s poll would miss a quick reconnect. */
  #watchPeer(): void {
    const pc = this.#media?.pc;
    if (!pc || pc === this.#watchedPeer) return;
    this.#watchedPeer = pc;
    pc.addEventListener('connectionstatechange', () => {
      if (pc === this.#media?.pc) this.#checkMedia(false);
    });
  }

  /**
   * A switch between the server and a direct link (the SDK announces it before the new path's
   * tracks): the old path's elements leave #slots but keep playing until every slot of the new path
   * that carries someone is heard — the new receivers' jitter buffers take a moment to play out,
   * longer on a busy machine — or HANDOVER_MS passes (a silent participant holds it that long; two
   * copies of silence are not heard). docs/media.md has the measured gaps.
   */
  #handOver(path: 'direct' | 'server'): void {
    this.#retire(this.#handover);
    const previous = this.#slots.splice(0).filter((p) => p !== undefined);
    this.#handover = previous;
    if (previous.length === 0) return;
    const since = performance.now();
    const check = (): void => {
      if (this.#handover !== previous) return;
      if (performance.now() - since < HANDOVER_MS && !this.#heard(path)) {
        setTimeout(check, 10);
        return;
      }
      this.#retire(previous);
      this.#handover = [];
    };
    setTimeout(check, 10);
  }

  /** Whether every slot of `path` that carries another participant plays something audible. */
  #heard(path: 'direct' | 'server'): boolean {
    const self = this.room?.participantId;
    const slots = path === 'direct' ? [0] : (this.room?.slots ?? []).filter((s) => s.participantId !== null && s.participantId !== self).map((s) => s.slot);
    return slots.length > 0 && slots.every((slot) => this.#slots[slot]?.meter.audible() === true);
  }

  #retire(playbacks: SlotPlayback[]): void {
    for (const { audio, meter } of playbacks) {
      meter.close();
      audio.srcObject = null;
      audio.remove();
    }
  }

  #play(slot: number, track: MediaStreamTrack): void {
    const context = this.#context;
    if (!context) return;
    const old = this.#slots[slot];
    if (old?.audio.srcObject instanceof MediaStream && old.audio.srcObject.getAudioTracks()[0] === track) return;
    // A new element for the new track; the one it replaces (a replaced server peer's, after a
    // media reconnect) plays on until the new one is heard, or HANDOVER_MS when nobody speaks.
    const audio = document.createElement('audio');
    audio.autoplay = true;
    audio.dataset.slot = String(slot);
    audio.srcObject = new MediaStream([track]);
    if (old) old.audio.after(audio);
    else this.#options.audioContainer.append(audio);
    const meter = new LevelMeter(context, track);
    this.#slots[slot] = { audio, meter };
    if (!old) {
      audio.play().catch(() => this.#note('Click anywhere to allow audio playback', 'warn'));
      return;
    }
    const since = performance.now();
    const retireWhenHeard = (): void => {
      if (this.#slots[slot]?.meter !== meter || meter.audible() || performance.now() - since >= HANDOVER_MS) this.#retire([old]);
      else setTimeout(retireWhenHeard, 10);
    };
    audio.play().then(retireWhenHeard, () => {
      this.#retire([old]);
      this.#note('Click anywhere to allow audio playback', 'warn');
    });
  }

  /** Media state for the view, and the ICE restart request the SDK could not send itself. */
  #checkMedia(now: boolean): void {
    this.#watchPeer();
    const pc = this.#media?.pc;
    if (!pc) return;
    const state = pc.connectionState;
    if (state !== this.#mediaState) {
      if (state === 'connected') this.#note(this.#wasMediaConnected ? 'Media reconnected' : 'Media connected', 'good');
      else if (this.#mediaState === 'connected') this.#note(MEDIA_TROUBLE[state] ?? 'Media reconnecting…', 'warn');
      if (state === 'connected') this.#wasMediaConnected = true;
      this.#mediaState = state;
      this.emit('change');
    }
    const troubled = state === 'disconnected' || state === 'failed';
    if (!troubled) {
      this.#mediaTroubleSince = 0;
      return;
    }
    const t = Date.now();
    if (this.#mediaTroubleSince === 0) this.#mediaTroubleSince = t;
    // A direct link has no server peer to restart: the server decides what follows (p2p.switchTimeoutMs).
    const signalling = (this.client.state === 'connected' || this.client.state === 'resumed') && this.audioPath === 'server';
    const stalled = now || t - this.#mediaTroubleSince >= MEDIA_STALL_MS;
    if (signalling && stalled && t - this.#lastRestartRequest >= RESTART_RETRY_MS) {
      this.#lastRestartRequest = t;
      this.#note('Media interrupted — asking the server for an ICE restart', 'warn');
      try {
        this.client.sendMedia({ op: 'media', room: this.roomId, kind: 'ice_restart' });
      } catch {
        // Signalling dropped in between; the next tick tries again.
      }
    }
  }

  #note(text: string, tone: Activity['tone']): void {
    this.emit('activity', { at: new Date(), text, tone });
  }

  async #end(reason: string): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#teardown();
    this.emit('ended', reason);
  }

  async #teardown(): Promise<void> {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = null;
    window.removeEventListener('online', this.#onOnline);
    window.removeEventListener('offline', this.#onOffline);
    this.#media?.close();
    this.#media = null;
    this.#retire(this.#slots.splice(0).filter((p) => p !== undefined));
    this.#retire(this.#handover);
    this.#handover = [];
    this.#micMeter?.close();
    this.#micMeter = null;
    this.#mic?.stop();
    this.#mic = null;
    await this.client.disconnect();
    await this.#context?.close().catch(() => undefined);
    this.#context = null;
  }
}

function who(participant: ParticipantInfo, room: RoomState | undefined): string {
  return participant.participantId === room?.participantId ? 'You' : participant.name;
}

/** getUserMedia with voice processing on (W3C Media Capture §4.3.8 constraints). */
async function openMicrophone(deviceId: string | undefined): Promise<MediaStreamTrack> {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: {
      deviceId: deviceId ? { exact: deviceId } : undefined,
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
    },
  });
  const track = stream.getAudioTracks()[0];
  if (!track) throw new Error('no audio track from the microphone');
  return track;
}
