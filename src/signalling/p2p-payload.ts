import type { ClientPeerMessage } from '../protocol/messages.ts';

/** RFC 8866 §5: an SDP line is `<type>=<value>`, type one lower-case letter; no NULs or lone CR/LF. */
const SDP_LINE = /^[a-z]=[^\0\r\n]*$/;
/** RFC 8839 §5.1 candidate-attribute (the `a=` prefix stripped, as RTCIceCandidate.candidate has it). */
const CANDIDATE = /^candidate:[^\0\r\n]{1,2037}$/;

/**
 * Why a `peer` offer, answer or candidate may not be relayed (docs/media.md "Peer to peer"), or
 * null: the schema took its shape, this checks its content — SDP size (p2p.maxSdpBytes) and lines,
 * a candidate line — so the other participant's browser never parses garbage from the server.
 */
export function invalidPeerPayload(msg: ClientPeerMessage, maxSdpBytes: number): { reason: string; text: string } | null {
  if (msg.kind === 'candidate') {
    if (msg.candidate === undefined) return { reason: 'malformed', text: 'candidate is required (null: end of candidates)' };
    const c = msg.candidate?.candidate;
    if (c !== undefined && c !== '' && !CANDIDATE.test(c)) return { reason: 'malformed', text: 'candidate is not an ICE candidate line (RFC 8839 "candidate:…")' };
    return null;
  }
  if (msg.sdp === undefined) return { reason: 'malformed', text: 'sdp is required' };
  const bytes = Buffer.byteLength(msg.sdp, 'utf8');
  if (bytes > maxSdpBytes) return { reason: 'oversized', text: `sdp is ${bytes} bytes, more than p2p.maxSdpBytes (${maxSdpBytes})` };
  const lines = msg.sdp.split('\r\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines[0] !== 'v=0') return { reason: 'malformed', text: 'sdp must start with "v=0" (RFC 8866 §5)' };
  const bad = lines.findIndex((line) => !SDP_LINE.test(line));
  if (bad !== -1) return { reason: 'malformed', text: `sdp line ${bad + 1} is not "<type>=<value>" (RFC 8866 §5)` };
  if (!lines.some((line) => line.startsWith('m='))) return { reason: 'malformed', text: 'sdp has no media section' };
  return null;
}
