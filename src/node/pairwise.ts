/**
 * The edges of a round that went through both ways: a neighbour's frame arrived and this node's
 * frame to it was delivered. Mixing over these alone keeps a round's mixing matrix symmetric, which
 * gradient tracking needs (node/tracking.ts) and `gossip.pairwise` asks for. Injected loss is known
 * to the sender (its faulty transport reports the frame dropped); in a real run, a frame delivered
 * but arriving after its receiver's deadline still makes that round one-sided.
 */
import type { SendOutcome } from '../net/transport.js';

export function bothWays<T extends { readonly from: number }>(
  received: readonly T[],
  outcomes: readonly { to: number; outcome: SendOutcome }[],
): T[] {
  const delivered = new Set(
    outcomes.filter((o) => o.outcome.status === 'delivered').map((o) => o.to),
  );
  return received.filter((m) => delivered.has(m.from));
}
