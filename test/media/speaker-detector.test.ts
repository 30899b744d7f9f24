import { describe, expect, it } from 'vitest';
import { SpeakerDetector } from '../../src/media/speaker-detector.ts';

/** Drives the detector with 20 ms packets from each speaker at the given RFC 6464 levels, ticking every 100 ms. */
function drive(d: SpeakerDetector, levels: Record<string, number>, fromMs: number, toMs: number): string[][] {
  const rankings: string[][] = [];
  for (let t = fromMs; t < toMs; t += 20) {
    for (const [id, level] of Object.entries(levels)) d.process(id, level, t);
    if (t % 100 === 0) {
      d.tick(t);
      rankings.push([...d.ranking()]);
    }
  }
  return rankings;
}

describe('SpeakerDetector', () => {
  it('ranks the loudest first and reports speaking on/off with the level', () => {
    const d = new SpeakerDetector();
    drive(d, { quiet: 45, loud: 20, silent: 127 }, 0, 1000);
    expect(d.ranking()).toEqual(['loud', 'quiet', 'silent']);
    expect(d.isSpeaking('loud')).toBe(true);
    expect(d.isSpeaking('quiet')).toBe(true);
    expect(d.isSpeaking('silent')).toBe(false);
    const changes = d.takeSpeakingChanges();
    expect(changes.filter((c) => c.speaking).map((c) => c.participantId).sort()).toEqual(['loud', 'quiet']);
    expect(d.level('loud')).toBeGreaterThanOrEqual(19);
    expect(d.level('loud')).toBeLessThanOrEqual(21);
    // Loud goes silent: after the off threshold it stops speaking, and drops below quiet.
    drive(d, { quiet: 45, loud: 127 }, 1000, 3000);
    expect(d.isSpeaking('loud')).toBe(false);
    expect(d.ranking()[0]).toBe('quiet');
    expect(d.takeSpeakingChanges()).toEqual([expect.objectContaining({ participantId: 'loud', speaking: false })]);
  });

  it('does not flap between two voices within the switch margin', () => {
    const d = new SpeakerDetector({ switchMarginDb: 6 });
    d.stickyPlaces = 1;
    drive(d, { a: 30, b: 33 }, 0, 500);
    const first = d.ranking()[0];
    // Levels jitter ±3 dB around each other for 5 s: the top place never changes.
    const rankings: string[][] = [];
    for (let t = 500; t < 5500; t += 20) {
      const wobble = Math.sin(t / 50) * 3;
      d.process('a', Math.round(31.5 + wobble), t);
      d.process('b', Math.round(31.5 - wobble), t);
      if (t % 100 === 0) {
        d.tick(t);
        rankings.push([...d.ranking()]);
      }
    }
    expect(new Set(rankings.map((r) => r[0]))).toEqual(new Set([first]));
  });

  it('switches to a clearly louder speaker within half a second', () => {
    const d = new SpeakerDetector();
    d.stickyPlaces = 1;
    drive(d, { a: 20, b: 60 }, 0, 2000);
    expect(d.ranking()[0]).toBe('a');
    const rankings = drive(d, { a: 60, b: 20 }, 2000, 3000);
    const switchedAt = rankings.findIndex((r) => r[0] === 'b');
    expect(switchedAt).toBeGreaterThanOrEqual(0);
    expect(switchedAt * 100).toBeLessThanOrEqual(500);
    expect(rankings.slice(switchedAt).every((r) => r[0] === 'b')).toBe(true);
  });

  it('decays and then forgets a participant who stops sending (DTX, mute, gone)', () => {
    const d = new SpeakerDetector({ forgetAfterMs: 2000 });
    drive(d, { a: 20, b: 50 }, 0, 1000);
    drive(d, { b: 50 }, 1000, 2000);
    expect(d.ranking()[0]).toBe('b');
    expect(d.isSpeaking('a')).toBe(false);
    drive(d, { b: 50 }, 2000, 3200);
    expect(d.ranking()).toEqual(['b']);
  });

  it('does not drop the loudest speaker over a stall of its own thread (packets still queued)', () => {
    const d = new SpeakerDetector();
    d.stickyPlaces = 1;
    drive(d, { loud: 15, quiet: 45 }, 0, 1000);
    // 800 ms without ticks or packets (event loop stalled), then quiet's queued packets are read first.
    d.process('quiet', 45, 1800);
    d.tick(1800);
    expect(d.ranking()[0]).toBe('loud');
    expect(d.isSpeaking('loud')).toBe(true);
  });

  it('survives out-of-range levels and time going backwards', () => {
    const d = new SpeakerDetector();
    d.process('x', -5, 100);
    d.process('x', 500, 50);
    d.process('x', Number.NaN, 60);
    d.tick(200);
    expect(d.ranking()).toEqual(['x']);
    expect(d.toJSON().packets).toBe(3);
  });
});
