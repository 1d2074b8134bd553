import { memoryNetwork, memoryTransport } from '../../src/net/memory.js';
import { countingMetrics } from '../../src/net/metrics.js';
import type { ControlMessage } from '../../src/net/transport.js';
import { runTransportContract } from './contract.js';
import { LAYOUT, RUN_ID, SIGNATURE, SIZE } from './helpers.js';

runTransportContract('memory', async (n) => {
  const network = memoryNetwork();
  const metrics = Array.from({ length: n }, () => countingMetrics());
  const controls = Array.from({ length: n }, () => [] as ControlMessage[]);
  const transports = Array.from({ length: n }, (_, self) =>
    memoryTransport(
      {
        self,
        network,
        runId: RUN_ID,
        signature: SIGNATURE,
        size: SIZE,
        layout: LAYOUT,
        codec: 'f32',
      },
      { metrics: metrics[self]!, events: { onControl: (m) => controls[self]!.push(m) } },
    ),
  );
  for (const t of transports) await t.start();
  return {
    transports,
    metrics,
    controls,
    stop: async () => {
      for (const t of transports) await t.stop();
    },
  };
});
