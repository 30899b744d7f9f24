import type { TokenSource } from '../client/index.ts';
import { Call, type Activity } from './call.ts';

/**
 * The demo page's view: the join form and the room (participants, slots, connection and media
 * state, activity). Plain DOM, no framework: one screen, a handful of elements, updated in place.
 * The server renders index.html with `<meta name="voxlink-dev-mode">`; in dev mode the page asks
 * POST /dev/token for a short-lived token, otherwise the user pastes one (or passes ?token=).
 */

const ROOM_ID = /^[A-Za-z0-9._\-:@/~]{1,128}$/;
const MAX_ACTIVITY = 40;
const LEVEL_TICK_MS = 100;

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo page: #${id} missing`);
  return el as T;
}

const ui = {
  connection: byId<HTMLSpanElement>('connection'),
  joinView: byId<HTMLElement>('join-view'),
  joinForm: byId<HTMLFormElement>('join-form'),
  room: byId<HTMLInputElement>('room'),
  nameField: byId<HTMLDivElement>('name-field'),
  name: byId<HTMLInputElement>('name'),
  tokenDetails: byId<HTMLDetailsElement>('token-details'),
  token: byId<HTMLTextAreaElement>('token'),
  mic: byId<HTMLSelectElement>('mic'),
  joinButton: byId<HTMLButtonElement>('join-button'),
  joinMessage: byId<HTMLParagraphElement>('join-message'),
  roomView: byId<HTMLElement>('room-view'),
  roomTitle: byId<HTMLHeadingElement>('room-title'),
  roomName: byId<HTMLSpanElement>('room-name'),
  roomMode: byId<HTMLSpanElement>('room-mode'),
  mediaState: byId<HTMLSpanElement>('media-state'),
  mediaPath: byId<HTMLSpanElement>('media-path'),
  muteButton: byId<HTMLButtonElement>('mute-button'),
  recordButton: byId<HTMLButtonElement>('record-button'),
  recording: byId<HTMLSpanElement>('recording'),
  slotsTitle: byId<HTMLHeadingElement>('slots-title'),
  slotsHint: byId<HTMLParagraphElement>('slots-hint'),
  roomMic: byId<HTMLSelectElement>('room-mic'),
  leaveButton: byId<HTMLButtonElement>('leave-button'),
  banner: byId<HTMLParagraphElement>('banner'),
  count: byId<HTMLSpanElement>('participant-count'),
  participants: byId<HTMLUListElement>('participants'),
  slots: byId<HTMLOListElement>('slots'),
  activity: byId<HTMLOListElement>('activity'),
  remoteAudio: byId<HTMLDivElement>('remote-audio'),
};

const devMode = document.querySelector<HTMLMetaElement>('meta[name="voxlink-dev-mode"]')?.content === 'true';
let call: Call | null = null;
let levelTimer: ReturnType<typeof setInterval> | null = null;
let bannerTimer: ReturnType<typeof setTimeout> | null = null;

const CONNECTION_TEXT: Record<string, string> = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  resumed: 'Connected',
  reconnecting: 'Reconnecting…',
  disconnected: 'Disconnected',
  failed: 'Failed',
};

function setup(): void {
  const params = new URLSearchParams(location.search);
  const urlToken = params.get('token');
  if (urlToken) {
    // Keep the token out of the address bar (history, screen shares); the form holds it.
    params.delete('token');
    const query = params.toString();
    history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}`);
    ui.token.value = urlToken;
  }
  ui.room.value = params.get('room') ?? 'demo';
  ui.name.value = params.get('name') ?? localStorage.getItem('voxlink.demo.name') ?? '';
  if (!devMode) {
    // Without dev mode the token is the only way in, and it carries the display name.
    ui.tokenDetails.open = true;
    ui.tokenDetails.classList.add('always-open');
    ui.nameField.hidden = true;
  } else if (urlToken) {
    ui.tokenDetails.open = true;
  }
  ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void join();
  });
  ui.muteButton.addEventListener('click', () => void toggleMute());
  ui.recordButton.addEventListener('click', () => void toggleRecording());
  // Closing the tab leaves the room at once instead of leaving a ghost for the resume grace period.
  window.addEventListener('pagehide', () => call?.hangUp());
  ui.leaveButton.addEventListener('click', () => void call?.leave());
  ui.roomMic.addEventListener('change', () => {
    ui.mic.value = ui.roomMic.value;
    call?.switchMicrophone(ui.roomMic.value).catch((error: unknown) => addActivity({ at: new Date(), text: `Cannot switch microphone: ${message(error)}`, tone: 'bad' }));
  });
  navigator.mediaDevices?.addEventListener('devicechange', () => void listMicrophones().catch(() => undefined));
  void listMicrophones().catch(() => undefined);
  renderConnection('idle');
}

/** Fills both microphone pickers. Labels are empty until the page has microphone permission. */
async function listMicrophones(): Promise<void> {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'audioinput');
  for (const select of [ui.mic, ui.roomMic]) {
    const selected = select.value;
    select.replaceChildren(new Option('Default microphone', ''));
    devices.forEach((device, i) => {
      if (device.deviceId === 'default' || device.deviceId === '') return;
      select.add(new Option(device.label || `Microphone ${i + 1}`, device.deviceId));
    });
    select.value = [...select.options].some((o) => o.value === selected) ? selected : '';
  }
}

async function devToken(room: string, name: string): Promise<string> {
  const response = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ room, name }),
  });
  const body = (await response.json()) as { token?: string; message?: string };
  if (!response.ok || !body.token) throw new Error(body.message ?? `dev token refused (HTTP ${response.status})`);
  return body.token;
}

async function join(): Promise<void> {
  const room = ui.room.value.trim();
  const name = ui.name.value.trim();
  const pasted = ui.token.value.trim();
  if (!ROOM_ID.test(room)) return formError('Room names use letters, digits and . _ - : @ / ~ (up to 128).', ui.room);
  if (!pasted && !devMode) return formError('Paste an access token (voxlink token --room …).', ui.token);
  if (!pasted && !name) return formError('Enter your name.', ui.name);
  if (name) localStorage.setItem('voxlink.demo.name', name);
  const token: TokenSource = pasted || (() => devToken(room, name));

  ui.joinButton.disabled = true;
  ui.activity.replaceChildren();
  ui.banner.hidden = true;
  ui.joinMessage.className = 'message';
  ui.joinMessage.textContent = 'Joining…';
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const current = new Call({ wsUrl, room, token, microphoneId: ui.mic.value || undefined, audioContainer: ui.remoteAudio });
  call = current;
  current.on('change', render);
  current.on('activity', onActivity);
  current.on('ended', (reason) => showJoin(reason));
  try {
    await current.start();
  } catch (error) {
    call = null;
    ui.joinButton.disabled = false;
    renderConnection('idle');
    return formError(`Could not join: ${message(error)}`, ui.joinButton);
  }
  showRoom(room);
  void listMicrophones().catch(() => undefined); // labels are readable now that the microphone is open
}

function formError(text: string, focus: HTMLElement): void {
  ui.joinMessage.className = 'message error';
  ui.joinMessage.textContent = text;
  focus.focus();
}

function showRoom(room: string): void {
  ui.joinMessage.textContent = '';
  ui.joinView.hidden = true;
  ui.roomView.hidden = false;
  ui.roomName.textContent = room;
  document.title = `${room} · VoxLink`;
  ui.roomMic.value = ui.mic.value;
  render();
  levelTimer = setInterval(renderLevels, LEVEL_TICK_MS);
  ui.roomTitle.focus();
}

function showJoin(reason: string): void {
  call = null;
  if (levelTimer) clearInterval(levelTimer);
  levelTimer = null;
  ui.roomView.hidden = true;
  ui.joinView.hidden = false;
  ui.joinButton.disabled = false;
  ui.participants.replaceChildren();
  ui.slots.replaceChildren();
  document.title = 'VoxLink demo';
  renderConnection('idle');
  ui.joinMessage.className = 'message';
  ui.joinMessage.textContent = `${reason}.`;
  ui.joinButton.focus();
}

async function toggleMute(): Promise<void> {
  if (!call) return;
  ui.muteButton.disabled = true;
  try {
    await call.setMuted(!call.muted);
  } catch (error) {
    addActivity({ at: new Date(), text: `Mute failed: ${message(error)}`, tone: 'bad' });
  } finally {
    ui.muteButton.disabled = false;
    render();
  }
}

async function toggleRecording(): Promise<void> {
  const current = call;
  if (!current?.room) return;
  ui.recordButton.disabled = true;
  try {
    await current.setRecording(current.room.recording === null);
  } catch (error) {
    addActivity({ at: new Date(), text: `Recording: ${message(error)}`, tone: 'bad' });
  } finally {
    ui.recordButton.disabled = false;
    render();
  }
}

/** What the slots panel says in each room mode (docs/media.md "Room modes"). */
const MODE_VIEW: Record<string, { title: string; hint: (k: number) => string }> = {
  sfu: { title: 'Audio slots', hint: () => 'The server forwards the loudest speakers to you on a fixed set of tracks.' },
  mix: { title: 'Room mix', hint: () => 'The server mixes everyone into one track for you (without your own voice).' },
  hybrid: {
    title: 'Audio slots and mix',
    hint: (k) => `The ${k} loudest speakers come on their own tracks; the server mixes everyone else into one more.`,
  },
  p2p: { title: 'Direct audio', hint: () => 'Your audio goes straight to the other participant; the server only introduced you.' },
  auto: {
    title: 'Audio',
    hint: () => 'Two people talk directly; from three (or while recording) the server forwards the loudest speakers.',
  },
};

function renderConnection(state: string): void {
  ui.connection.dataset.state = state;
  ui.connection.textContent = CONNECTION_TEXT[state] ?? state;
}

function render(): void {
  const current = call;
  if (!current) return;
  renderConnection(current.connection);
  const room = current.room;
  ui.mediaState.dataset.state = current.mediaState;
  ui.mediaState.textContent = `Media: ${current.mediaState}`;
  ui.mediaPath.dataset.path = current.audioPath;
  ui.mediaPath.textContent = current.audioPath === 'direct' ? 'direct' : 'via server';
  ui.muteButton.textContent = current.muted ? 'Unmute' : 'Mute';
  ui.muteButton.setAttribute('aria-pressed', String(current.muted));
  if (!room) return;
  ui.roomMode.textContent = `Mode: ${room.mode}`;
  const recording = room.recording;
  ui.recording.hidden = recording === null;
  ui.recording.title = recording ? `Everyone in this room is being recorded since ${new Date(recording.startedAt).toLocaleTimeString()}` : '';
  ui.recordButton.hidden = !current.canRecord;
  ui.recordButton.textContent = recording ? 'Stop recording' : 'Record';
  ui.recordButton.setAttribute('aria-pressed', String(recording !== null));
  ui.count.textContent = String(room.participants.size);

  const seen = new Set<string>();
  const sorted = [...room.participants.values()].sort((a, b) =>
    a.participantId === room.participantId ? -1 : b.participantId === room.participantId ? 1 : a.joinedAt - b.joinedAt,
  );
  for (const p of sorted) {
    seen.add(p.participantId);
    let item = ui.participants.querySelector<HTMLLIElement>(`li[data-participant-id="${CSS.escape(p.participantId)}"]`);
    if (!item) item = participantItem(p.participantId);
    ui.participants.append(item); // keeps the sorted order
    const self = p.participantId === room.participantId;
    const slot = current.slotOf(p.participantId);
    item.dataset.self = String(self);
    item.dataset.speaking = String(p.speaking);
    item.dataset.muted = String(p.muted);
    // Their connection dropped: the server holds their place for the resume grace period.
    item.dataset.state = p.state ?? 'connected';
    item.querySelector('.avatar')!.textContent = initials(p.name);
    item.querySelector('.name')!.textContent = p.name;
    setTag(item, '.you', self, 'you');
    setTag(item, '.slot', !self && slot >= 0, `slot ${slot + 1}`);
    setTag(item, '.mixed', !self && slot < 0 && current.mixTrack >= 0, 'in the mix');
    setTag(item, '.reconnecting', p.state === 'reconnecting', 'reconnecting…');
    setTag(item, '.muted', p.muted, 'muted');
    setTag(item, '.speaking', p.speaking && !p.muted, 'speaking');
    setTag(item, '.listen', !self && !p.grants.includes('publish'), 'listener');
    item.querySelector('.meter')!.setAttribute('aria-label', `${p.name}: audio level`);
  }
  for (const item of [...ui.participants.children] as HTMLLIElement[]) {
    if (!seen.has(item.dataset.participantId ?? '')) item.remove();
  }

  const view = MODE_VIEW[room.mode] ?? MODE_VIEW.sfu;
  ui.slotsTitle.textContent = view.title;
  ui.slotsHint.textContent = view.hint(room.slots.length);
  const items = room.slots.map(({ slot, participantId }) => {
    const li = document.createElement('li');
    li.dataset.slot = String(slot);
    li.dataset.participantId = participantId ?? '';
    const p = participantId === null ? undefined : room.participants.get(participantId);
    li.textContent = `Slot ${slot + 1}: ${p ? p.name : 'empty'}`;
    li.className = p ? (p.speaking ? 'busy speaking' : 'busy') : 'empty';
    return li;
  });
  const mixTrack = current.mixTrack;
  if (mixTrack >= 0) {
    // The mixed track carries everyone no slot carries (everyone but you in a mix room).
    const inSlots = new Set(room.slots.map((s) => s.participantId));
    const mixed = [...room.participants.values()].filter((p) => p.participantId !== room.participantId && !inSlots.has(p.participantId));
    const speaking = mixed.filter((p) => p.speaking && !p.muted);
    const li = document.createElement('li');
    li.dataset.slot = String(mixTrack);
    li.dataset.mix = 'true';
    li.className = speaking.length > 0 ? 'busy speaking' : mixed.length > 0 ? 'busy' : 'empty';
    const label = room.mode === 'mix' ? 'Mix' : 'Mix of everyone else';
    li.textContent = mixed.length === 0 ? `${label}: nobody yet` : `${label}: ${speaking.length > 0 ? speaking.map((p) => p.name).join(', ') : `${mixed.length} quiet`}`;
    items.push(li);
  }
  if (items.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'No audio slots yet';
    items.push(li);
  }
  ui.slots.replaceChildren(...items);
}

function participantItem(participantId: string): HTMLLIElement {
  const item = document.createElement('li');
  item.className = 'participant';
  item.dataset.participantId = participantId;
  item.innerHTML =
    '<span class="avatar" aria-hidden="true"></span>' +
    '<span class="who"><span class="name"></span> <span class="tag you" hidden></span></span>' +
    '<span class="tags"><span class="tag slot" hidden></span><span class="tag mixed" hidden></span><span class="tag listen" hidden></span>' +
    '<span class="tag reconnecting" hidden title="Their connection dropped; waiting for them to come back"></span>' +
    '<span class="tag muted" hidden></span><span class="tag speaking" hidden></span></span>' +
    '<span class="meter" role="meter" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><span class="fill"></span></span>';
  return item;
}

function setTag(item: HTMLElement, selector: string, shown: boolean, text: string): void {
  const tag = item.querySelector<HTMLElement>(selector)!;
  tag.hidden = !shown;
  tag.textContent = text;
}

function renderLevels(): void {
  if (!call) return;
  const levels = call.levels();
  for (const item of ui.participants.children as HTMLCollectionOf<HTMLLIElement>) {
    const level = levels.get(item.dataset.participantId ?? '') ?? 0;
    const percent = Math.round(level * 100);
    const meter = item.querySelector<HTMLElement>('.meter')!;
    if (meter.getAttribute('aria-valuenow') === String(percent)) continue;
    meter.setAttribute('aria-valuenow', String(percent));
    item.dataset.level = String(percent);
    meter.querySelector<HTMLElement>('.fill')!.style.transform = `scaleX(${level.toFixed(3)})`;
  }
}

function onActivity(entry: Activity): void {
  addActivity(entry);
  if (entry.tone === 'warn' || entry.tone === 'bad') showBanner(entry.text, entry.tone, 0);
  else if (entry.tone === 'good' && !ui.banner.hidden) showBanner(entry.text, entry.tone, 4000);
  render();
}

function showBanner(text: string, tone: Activity['tone'], hideAfterMs: number): void {
  if (bannerTimer) clearTimeout(bannerTimer);
  bannerTimer = null;
  ui.banner.textContent = text;
  ui.banner.dataset.tone = tone;
  ui.banner.hidden = false;
  if (hideAfterMs > 0) {
    bannerTimer = setTimeout(() => {
      ui.banner.hidden = true;
    }, hideAfterMs);
  }
}

function addActivity(entry: Activity): void {
  const li = document.createElement('li');
  li.dataset.tone = entry.tone;
  const time = document.createElement('time');
  time.dateTime = entry.at.toISOString();
  time.textContent = entry.at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  li.append(time, ` ${entry.text}`);
  ui.activity.prepend(li);
  while (ui.activity.children.length > MAX_ACTIVITY) ui.activity.lastElementChild?.remove();
}

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts.length > 1 ? (parts[parts.length - 1][0] ?? '') : '')).toUpperCase();
}

function message(error: unknown): string {
  if (error instanceof DOMException && error.name === 'NotAllowedError') return 'microphone permission denied';
  return error instanceof Error ? error.message : String(error);
}

setup();
