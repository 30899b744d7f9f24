import { defineConfig } from 'vitest/config';

// Integration tests start real servers, coturn, Redis and Chromium; on a 2-core host
// two files at a time keeps them from starving each other's timers.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The JSON report lets CI print one plain "N passed, N failed" line at the end.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-artifacts/vitest-report.json' },
    // Quiet logs in tests (servers, workers and child processes inherit it); a test that reads
    // the logs sets its own level.
    env: { VOXLINK_LOG_LEVEL: process.env.VOXLINK_LOG_LEVEL ?? 'silent' },
  },
});
