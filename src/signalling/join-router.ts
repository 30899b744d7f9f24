/**
 * Where a `join` is served, for a cluster of nodes (src/cluster/node.ts implements it; without
 * one every join is served here, as on a single node). docs/architecture.md "Presence and adding
 * a cluster implementation": the question "which node owns room X" is answered before the join
 * reaches presence, so presence stays synchronous and local.
 */
export type JoinRoute =
  | { kind: 'local' }
  /** The room lives on another node: the client goes there with a signed ticket. */
  | { kind: 'redirect'; url: string; ticket: string }
  /** The join cannot be placed now (the registry is unreachable); the client may retry. */
  | { kind: 'refuse'; code: 'CLUSTER_UNAVAILABLE'; message: string };

export interface JoinRouter {
  /**
   * The answer without I/O when there is one: the room is open here, or the ticket names this
   * node for this room. Undefined: ask `route`.
   */
  routeNow(roomId: string, ticket: string | undefined): JoinRoute | undefined;
  /** Asks the registry (may claim the room for this or another node). Never rejects. */
  route(roomId: string): Promise<JoinRoute>;
}
