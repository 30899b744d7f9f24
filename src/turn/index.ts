/** Public surface of src/turn. */
export { iceServersFor, turnCredentials } from './credentials.ts';
export type { TurnCredentials } from './credentials.ts';
