/** Shared HS256 secret of the benchmark's servers and load generators (loopback only). */
export const BENCH_SECRET = 'voxlink-signalling-bench-secret-0123456789';
