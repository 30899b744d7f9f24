import { VoxError, type VoxErrorCode } from '../errors.ts';
import { closeCodeInfo, type ProtocolErrorCode } from '../protocol/index.ts';

/**
 * A VoxError from the signalling connection. Besides the SDK's own `code`, it carries what the
 * server said: the protocol error code of an `error` reply (`serverCode`, e.g. ROOM_FULL), or the
 * WebSocket close code that ended the session (`closeCode`, e.g. 1008 = bad token).
 */
export class SignallingError extends VoxError {
  readonly serverCode: ProtocolErrorCode | undefined;
  readonly closeCode: number | undefined;

  constructor(
    code: VoxErrorCode,
    message: string,
    details: { serverCode?: ProtocolErrorCode; closeCode?: number; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.serverCode = details.serverCode;
    this.closeCode = details.closeCode;
  }

  /** The close code's name from the protocol table (e.g. POLICY_VIOLATION), if any. */
  get closeName(): string | undefined {
    return this.closeCode === undefined ? undefined : closeCodeInfo(this.closeCode)?.name;
  }
}

export function describeClose(code: number, reason: string): string {
  const info = closeCodeInfo(code);
  const name = info ? `${info.name}, ${info.description}` : code === 1006 ? 'abnormal closure' : 'unknown';
  return `${code} (${name})${reason ? `: ${reason}` : ''}`;
}
