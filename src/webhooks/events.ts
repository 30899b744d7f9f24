import type { RoomMode } from '../protocol/messages.ts';
import type { ServerObserver, TranscriptReady } from '../signalling/observer.ts';

/**
 * The events applications receive (docs/recording.md "Webhooks"), mapped from the server observer
 * (src/signalling/observer.ts): the observer's names are the server's own, these are the public
 * contract, so a rename inside the server never breaks a receiver. Session ids and anything secret
 * stay out of the payloads.
 */
export interface WebhookEvents {
  room_started: { roomId: string; mode: RoomMode };
  room_finished: { roomId: string };
  participant_joined: { roomId: string; participantId: string; userId: string; name: string };
  participant_left: { roomId: string; participantId: string; userId: string; reason: string };
  recording_started: { roomId: string; recordingId: string; startedBy: string; startedAt: number };
  recording_finished: { roomId: string; recordingId: string; reason: string; stoppedBy?: string };
  recording_uploaded: { roomId: string; recordingId: string; objects: number; bytes: number };
  transcript_ready: TranscriptReady;
}

export type WebhookEventName = keyof WebhookEvents;

export const webhookEventNames = [
  'room_started',
  'room_finished',
  'participant_joined',
  'participant_left',
  'recording_started',
  'recording_finished',
  'recording_uploaded',
  'transcript_ready',
] as const satisfies readonly WebhookEventName[];

/** The JSON body of every webhook request. */
export interface WebhookPayload<K extends WebhookEventName = WebhookEventName> {
  /** Unique per event (the same in every attempt and for every URL): receivers de-duplicate on it. */
  id: string;
  event: K;
  /** When the server saw it, ms since the Unix epoch. */
  createdAt: number;
  roomId: string;
  data: WebhookEvents[K];
}

export type WebhookSink = <K extends WebhookEventName>(event: K, data: WebhookEvents[K]) => void;

/** Subscribes `sink` to the observer's events under their webhook names; returns the unsubscribe. */
export function subscribeWebhookEvents(observer: ServerObserver, sink: WebhookSink): () => void {
  const offs = [
    observer.on('room_created', (e) => sink('room_started', { roomId: e.roomId, mode: e.mode })),
    observer.on('room_closed', (e) => sink('room_finished', { roomId: e.roomId })),
    observer.on('participant_joined', (e) =>
      sink('participant_joined', { roomId: e.roomId, participantId: e.participantId, userId: e.userId, name: e.name }),
    ),
    observer.on('participant_left', (e) =>
      sink('participant_left', { roomId: e.roomId, participantId: e.participantId, userId: e.userId, reason: e.reason }),
    ),
    observer.on('recording_started', (e) =>
      sink('recording_started', { roomId: e.roomId, recordingId: e.recordingId, startedBy: e.startedBy, startedAt: e.startedAt }),
    ),
    observer.on('recording_stopped', (e) =>
      sink('recording_finished', {
        roomId: e.roomId,
        recordingId: e.recordingId,
        reason: e.reason,
        ...(e.stoppedBy === undefined ? {} : { stoppedBy: e.stoppedBy }),
      }),
    ),
    observer.on('recording_uploaded', (e) => sink('recording_uploaded', { ...e })),
    observer.on('transcript_ready', (e) => sink('transcript_ready', { ...e, tracks: e.tracks.map((t) => ({ ...t })) })),
  ];
  return () => {
    for (const off of offs) off();
  };
}
