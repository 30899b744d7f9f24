import type { VoxConfig } from '../config.ts';

/**
 * The signalling URL other nodes send this node's clients to: cluster.publicUrl, else the first
 * URL the server reports as reachable (server.publicUrl or an interface address) as ws[s]://…/ws.
 */
export function clusterUrlOf(config: Pick<VoxConfig, 'cluster'>, server: { readonly urls: readonly string[]; readonly url: string }): string {
  if (config.cluster.publicUrl !== undefined) return config.cluster.publicUrl;
  const base = new URL(server.urls[0] ?? server.url);
  base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  base.pathname = `${base.pathname.replace(/\/$/, '')}/ws`;
  return base.toString();
}
