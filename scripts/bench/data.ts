/**
 * Data benchmarks: load time and resident memory per data set, and partitioner time on the
 * Fashion-MNIST labels. Data sets that are not installed are reported as skipped.
 *
 *   npm run bench -- data
 */
import { loadDataset, parsePartitionSpec, partitionDataset } from '../../src/data/index.js';
import type { DatasetSpec } from '../../src/data/types.js';

function line(o: Record<string, unknown>): void {
  console.log(JSON.stringify({ suite: 'data', ...o }));
}

export async function run(_args: string[]): Promise<void> {
  const specs: DatasetSpec[] = [
    { name: 'digits' },
    { name: 'synthetic', alpha: 1, beta: 1 },
    { name: 'fashion-mnist' },
    { name: 'cifar10', limit: 10_000 },
  ];
  let labels: Int32Array | undefined;
  for (const spec of specs) {
    const t = performance.now();
    try {
      const ds = await loadDataset(spec, { seed: 0 });
      line({
        metric: 'load',
        spec,
        seconds: +((performance.now() - t) / 1000).toFixed(3),
        train: ds.train.count,
        test: ds.test.count,
        rssMB: Math.round(process.memoryUsage().rss / 1e6),
      });
      if (spec.name === 'fashion-mnist') labels = ds.train.y;
    } catch (e) {
      line({ metric: 'load', spec, skipped: (e as Error).message.split('.')[0] });
    }
  }
  if (!labels) return;
  for (const p of ['iid', 'dirichlet:0', 'dirichlet:0.1', 'dirichlet:1000', 'shards:2']) {
    for (const nodes of [16, 100]) {
      const t = performance.now();
      partitionDataset(labels, 10, nodes, parsePartitionSpec(p), 0);
      line({
        metric: 'partition',
        partition: p,
        nodes,
        samples: labels.length,
        ms: +(performance.now() - t).toFixed(1),
      });
    }
  }
}
