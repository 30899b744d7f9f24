/** Public surface of src/turn. */
export { iceServersFor, restCredentials, turnCredentials } from './credentials.ts';
export type { TurnCredentials } from './credentials.ts';
export { openSecretStore, startTurn, startTurnService, stopTurn } from './service.ts';
export type { TurnService } from './service.ts';
export { rotateSecret, pruneSecrets, newSecret } from './secrets.ts';
export type { RealmOptions, SecretRecord, TurnSecretStore } from './secrets.ts';
export { turnMetrics } from './metrics.ts';
