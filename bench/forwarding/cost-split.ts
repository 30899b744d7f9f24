/**
 * Per-packet cost split of the forwarding server from a V8 CPU profile (`node --cpu-prof` on the
 * bench's server process): each sample's self time goes to the first frame, walking from the leaf
 * towards the root, whose script says what it is. Native frames (no script: the dgram binding's
 * send, crypto) take the category of the JavaScript that called them.
 */
import { readFileSync } from 'node:fs';

export type CostCategory = 'routing' | 'srtp' | 'send' | 'receive' | 'rtcp-ice-timers' | 'gc' | 'other';
export type CostSplit = Record<CostCategory, number>;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** What one frame is, or null to ask its caller. */
function classify(fn: string, url: string): CostCategory | null {
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)') return 'other';
  if (url.includes('/src/media/srtp/')) return 'srtp';
  if (url.includes('/src/media/werift-adapter.ts') && fn === 'send') return 'send';
  if (url.includes('/src/media/udp-direct.ts')) return 'send';
  if (url === 'node:dgram' || url === 'node:internal/dgram' || url === 'node:dns' || url === 'node:internal/dns/utils') return 'send';
  if (url.includes('/src/media/')) return 'routing';
  if (url.includes('werift')) {
    if (/rtcp|Rtcp|Stun|stun|consent|Consent|Timer|runRtcp|Nack|nack/.test(url + fn)) return 'rtcp-ice-timers';
    return 'receive';
  }
  if (url.startsWith('node:internal/timers') || url === 'node:timers') return 'rtcp-ice-timers';
  if (url === '' || url.startsWith('node:')) return null;
  return 'other';
}

/** Self time per category in µs from a .cpuprofile; idle excluded. */
export function costSplit(path: string): CostSplit {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const category = new Map<number, CostCategory>();
  const categoryOf = (id: number): CostCategory => {
    const known = category.get(id);
    if (known !== undefined) return known;
    const n = byId.get(id)!;
    let c = classify(n.callFrame.functionName, n.callFrame.url);
    if (c === null) {
      const p = parent.get(id);
      c = p === undefined ? 'other' : categoryOf(p);
    }
    category.set(id, c);
    return c;
  };
  const split: CostSplit = { routing: 0, srtp: 0, send: 0, receive: 0, 'rtcp-ice-timers': 0, gc: 0, other: 0 };
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)' || n.callFrame.functionName === '(root)') return;
    split[categoryOf(id)] += profile.timeDeltas[i] ?? 0;
  });
  return split;
}

/** Top self-time functions (for the bench's console, to see what a category holds). */
export function topFunctions(path: string, n = 15): { fn: string; url: string; ms: number }[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const agg = new Map<string, { fn: string; url: string; ms: number }>();
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    const k = `${node.callFrame.functionName}@${node.callFrame.url}`;
    const e = agg.get(k) ?? { fn: node.callFrame.functionName, url: node.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/'), ms: 0 };
    e.ms += us / 1000;
    agg.set(k, e);
  }
  return [...agg.values()].filter((e) => e.fn !== '(idle)').sort((a, b) => b.ms - a.ms).slice(0, n);
}

if (process.argv[1]?.endsWith('cost-split.ts') && process.argv[2] !== undefined) {
  console.log(costSplit(process.argv[2]));
  console.table(topFunctions(process.argv[2], 30));
}
