/**
 * A kernel-level profile of a piece of tfjs work: every kernel of the current backend is wrapped so
 * that each call's process CPU time is added to a (kernel, input shapes) row; the wrappers are
 * removed afterwards. What is not inside a kernel (the engine, the tape, the trainer's own code) is
 * reported as `outsideKernelsMs`.
 *
 *   const p = profileKernels(() => trainer.train(40, lr), 40);
 *   // { cpuMsPerStep, kernelsMsPerStep, outsideKernelsMs, top: [{ kernel, shapes, calls, msPerStep }] }
 */
import * as tf from '@tensorflow/tfjs';

interface Row {
  calls: number;
  ms: number;
}

export function profileKernels(work: () => unknown, steps: number, top = 12) {
  const backend = tf.getBackend();
  const originals = tf.getKernelsForBackend(backend);
  const rows = new Map<string, Row>();
  for (const k of originals) {
    const inner = k.kernelFunc as unknown as (a: {
      inputs: Record<string, tf.TensorInfo>;
    }) => unknown;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: ((args: { inputs: Record<string, tf.TensorInfo> }) => {
        const c0 = process.cpuUsage();
        const out = inner(args);
        const c = process.cpuUsage(c0);
        const shapes = Object.values(args.inputs)
          .map((t) => (t ? `[${t.shape.join(',')}]` : '-'))
          .join(' ');
        const key = `${k.kernelName} ${shapes}`;
        const row = rows.get(key) ?? { calls: 0, ms: 0 };
        row.calls++;
        row.ms += (c.user + c.system) / 1000;
        rows.set(key, row);
        return out;
      }) as unknown as tf.KernelFunc,
    });
  }
  const c0 = process.cpuUsage();
  try {
    work();
  } finally {
    for (const k of originals) {
      tf.unregisterKernel(k.kernelName, backend);
      tf.registerKernel(k);
    }
  }
  const c = process.cpuUsage(c0);
  const total = (c.user + c.system) / 1000;
  let inKernels = 0;
  for (const r of rows.values()) inKernels += r.ms;
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  return {
    cpuMsPerStep: r3(total / steps),
    kernelsMsPerStep: r3(inKernels / steps),
    outsideKernelsMsPerStep: r3((total - inKernels) / steps),
    kernelCallsPerStep: r3([...rows.values()].reduce((a, r) => a + r.calls, 0) / steps),
    top: [...rows.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, top)
      .map(([key, r]) => ({
        kernel: key,
        callsPerStep: r3(r.calls / steps),
        msPerStep: r3(r.ms / steps),
      })),
  };
}
