import { defineConfig } from 'vitest/config';

// Integration tests start real servers, coturn, Redis and Chromium; on a 2-core host
// two files at a time keeps them from starving each other's timers.
//
// A few files measure audio in real time against tight bounds: a switch's gap under 100 ms
// (p2p), a tone's level right before a worker is killed, SNR under scripted loss, word times in
// a transcript. Run next to another integration file on 2 cores, Chromium's or a werift client's
// audio clock stalls and these fail though nothing is wrong (full-suite runs showed it, each file
// alone passes). They run after the rest, one file at a time (`sequence.groupOrder`), so their
// bounds stay tight instead of being loosened for a busy host.
const QUIET = [
  'test/p2p/chromium-auto.test.ts',
  'test/recording/recording.test.ts',
  'test/recording/room-recording.test.ts',
  'test/resilience/red-loss.test.ts',
  'test/resilience/dred-mix.test.ts',
  'test/transcription/transcription.test.ts',
  'test/soak/worker-kill-audio-back.test.ts',
];

const shared = {
  pool: 'forks' as const,
  testTimeout: 30_000,
  hookTimeout: 60_000,
  // Quiet logs in tests (servers, workers and child processes inherit it); a test that reads
  // the logs sets its own level.
  env: { VOXLINK_LOG_LEVEL: process.env.VOXLINK_LOG_LEVEL ?? 'silent' },
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    // The JSON report lets CI print one plain "N passed, N failed" line at the end.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-artifacts/vitest-report.json' },
    projects: [
      {
        test: { ...shared, name: 'suite', include: ['test/**/*.test.ts'], exclude: QUIET, sequence: { groupOrder: 0 } },
      },
      {
        test: { ...shared, name: 'timing', include: QUIET, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
