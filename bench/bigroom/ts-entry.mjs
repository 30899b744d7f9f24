// Worker bootstrap for the bench's TypeScript worker code: on Node 20 the parent's `--import tsx`
// hooks do not reach a Worker, so register tsx here, then import the .ts module named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
