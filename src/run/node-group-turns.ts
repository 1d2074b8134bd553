/**
 * Training turns for the nodes of one process (`launch --nodes-per-process K`): at most one node's
 * local steps per turn of the event loop, so the sockets of every node of the process are served
 * between any two nodes' training.
 *
 * A node's training is one synchronous block (~50 ms for 10 steps of the 784-200-200-10 MLP on an
 * idle core, ~0.5 s on a loaded one). Nodes of one process that reach their training in the same
 * turn (their frames in, their heartbeats out) trained back to back, and nothing was read from or
 * written to any socket meanwhile: with K = 64 on a loaded machine that held the sockets for tens of
 * seconds, past libp2p's 10 s bounds on a handshake, a dial and a protocol negotiation, and
 * connections broke (a 256-node launch, 4 processes of 64, lost 222 of its 265 sends).
 *
 *   const turns = trainingTurns();
 *   buildNode(ctx, id, { ...parts, trainer: (n) => turns.wrap(n.trainer) });
 *
 * Each wrapped train() waits for the previous one's turn and then for one more turn of the event
 * loop (setImmediate: its poll phase, the sockets, comes first), then trains. What is trained does
 * not change, only when.
 */
import type { RoundTrainer } from '../learn/index.js';

export interface TrainingTurns {
  wrap(trainer: RoundTrainer): RoundTrainer;
}

export function trainingTurns(): TrainingTurns {
  let last: Promise<void> = Promise.resolve();
  return {
    wrap: (t) => ({
      getRngState: () => t.getRngState(),
      setRngState: (s) => t.setRngState(s),
      async train(steps, lr) {
        const turn = last.then(() => new Promise<void>((r) => setImmediate(r)));
        last = turn;
        await turn;
        return t.train(steps, lr);
      },
    }),
  };
}
