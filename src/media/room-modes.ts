import type { MediaRoomMode } from '../rooms/media-contract.ts';
import type { MixRoomMode } from './mix-room.ts';

/**
 * A media room mode is one row of this table: which taps (audio-tap.ts) the room has and what its
 * peers negotiate. room.ts reads the row and never compares mode names. To add a mode: add it to
 * `roomModes` in src/protocol/messages.ts, then a row here (docs/architecture.md, "Adding a room
 * mode"); the compiler lists every place that must know it.
 */
export interface RoomModeRow {
  /** Subscribers get K forwarded audio slots (the SlotForwarder tap). False: one mix track only. */
  slots: boolean;
  /**
   * The mixer tap from the room's start, and how it mixes (`mix`: everyone; `hybrid`: everyone but
   * the forwarded top K). null: a mixer only while some subscriber asked for mixed audio.
   */
  mixer: MixRoomMode | null;
  /**
   * A speaker's own slot carries speaker K+1 (SlotRouter `fillIn`). False in `hybrid`, where K+1
   * is in the mix and would be heard twice.
   */
  slotFillIn: boolean;
  /** PCMU/PCMA are offered after Opus: telephony peers hear the mix (and slots) as G.711. */
  g711: boolean;
  /** The recorder also records the room as heard (the mixer's room output, `00-mix.opus`). */
  recordsMix: boolean;
  /**
   * A subscriber may switch between slots and mixed audio (`ice_restart` options.audio); the
   * mixer then started on demand mixes this way. null: no switching.
   */
  layoutSwitch: MixRoomMode | null;
}

export const ROOM_MODES: Readonly<Record<MediaRoomMode, Readonly<RoomModeRow>>> = {
  sfu: { slots: true, mixer: null, slotFillIn: true, g711: false, recordsMix: false, layoutSwitch: 'mix' },
  mix: { slots: false, mixer: 'mix', slotFillIn: true, g711: true, recordsMix: true, layoutSwitch: null },
  // A hybrid mix leaves out the slot speakers, so recording it would miss them (docs/recording.md).
  hybrid: { slots: true, mixer: 'hybrid', slotFillIn: false, g711: true, recordsMix: false, layoutSwitch: null },
};
