/**
 * The nodes of one process train one per turn of the event loop: I/O that completes while one node
 * trains is served before the next node trains, and a wrapped trainer trains exactly as its own.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { describe, it } from 'node:test';
import type { RoundTrainer, TrainerRngState, TrainResult } from '../../src/learn/index.js';
import { trainingTurns } from '../../src/run/node-group-turns.js';

/** A trainer whose training blocks the thread for `ms`, as tfjs's synchronous kernels do. */
function blocking(name: string, ms: number, log: string[]): RoundTrainer {
  let rng: TrainerRngState = { passStart: [1, 2, 3, 4], cursor: 0 };
  return {
    train(steps: number): TrainResult {
      log.push(`train ${name}`);
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // busy, like a training step
      }
      rng = { ...rng, cursor: rng.cursor + steps };
      return { loss: steps, samples: 32 * steps };
    },
    getRngState: () => rng,
    setRngState: (s) => {
      rng = s;
    },
  };
}

describe('training turns of the nodes of one process', () => {
  it('reads a socket whose bytes arrived while one node trained before the next node trains', async () => {
    const log: string[] = [];
    const turns = trainingTurns();
    const nodes = ['a', 'b', 'c'].map((n) => turns.wrap(blocking(n, 20, log)));
    // A loopback connection, as between two nodes: bytes written now are in the receiver's socket
    // buffer at once, and read in the event loop's next poll phase.
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const accepted = once(server, 'connection');
    const client = connect(port, '127.0.0.1');
    await once(client, 'connect');
    const [socket] = (await accepted) as [import('node:net').Socket];
    const read = new Promise<void>((resolve) =>
      socket.once('data', () => {
        log.push('read');
        resolve();
      }),
    );
    try {
      client.write('x');
      // All three reach their training in the same turn, as a process's nodes do.
      const results = await Promise.all(nodes.map((t) => t.train(3, 0.1)));
      await read;
      assert.deepEqual(log, ['train a', 'read', 'train b', 'train c']);
      assert.deepEqual(
        results.map((r) => r.loss),
        [3, 3, 3],
      );
    } finally {
      client.destroy();
      socket.destroy();
      server.close();
    }
  });

  it('a wrapped trainer trains as its own and keeps its random state', async () => {
    const log: string[] = [];
    const own = blocking('x', 0, log);
    const wrapped = trainingTurns().wrap(own);
    assert.deepEqual(await wrapped.train(5, 0.1), { loss: 5, samples: 160 });
    assert.deepEqual(wrapped.getRngState(), { passStart: [1, 2, 3, 4], cursor: 5 });
    wrapped.setRngState({ passStart: [9, 9, 9, 9], cursor: 1 });
    assert.deepEqual(own.getRngState(), { passStart: [9, 9, 9, 9], cursor: 1 });
  });
});
