import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { doctor, packageVersion } from '../../src/cli/doctor.js';
import { backendInfo, initBackend } from '../../src/compute/backend.js';
import { WASM_PATCHES } from '../../src/compute/kernels/wasm-patches.js';
import { BackendError, ConfigError } from '../../src/errors.js';

const nodeInstalled = packageVersion('@tensorflow/tfjs-node') !== undefined;
const handlerCounts = () => [
  process.listeners('uncaughtException').length,
  process.listeners('unhandledRejection').length,
];

describe('initBackend', () => {
  afterEach(() => {
    delete process.env['FLATMESH_BACKEND'];
  });

  it('picks the fastest backend that loads and says why', async () => {
    // This is the file's first backend load: the wasm glue's process-wide rethrowing error
    // handlers must not stay installed after it.
    const handlersBefore = handlerCounts();
    const info = await initBackend({ quiet: true });
    assert.equal(info.name, nodeInstalled ? 'node' : 'wasm');
    assert.equal(tf.getBackend(), info.tfBackend);
    assert.equal(info.tfjsVersion, tf.version.tfjs);
    assert.match(info.reason, /^automatic/);
    if (!nodeInstalled) {
      assert.match(info.reason, /@tensorflow\/tfjs-node is not installed/);
      assert.deepEqual(info.patches, [...WASM_PATCHES]);
      assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'filter gradient registered');
    }
    assert.equal(backendInfo(), info);
    assert.deepEqual(
      handlerCounts(),
      handlersBefore,
      'backend loading left process-wide error handlers behind',
    );
  });

  it('is idempotent and switches only when another backend is asked for', async () => {
    const a = await initBackend({ quiet: true });
    const b = await initBackend({ quiet: true });
    assert.equal(a, b);
    const cpu = await initBackend({ prefer: 'cpu', quiet: true });
    assert.equal(cpu.name, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.deepEqual(cpu.patches, []);
    assert.match(cpu.reason, /forced by prefer=cpu/);
    const wasm = await initBackend({ prefer: 'wasm', quiet: true });
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(wasm.patches, [...WASM_PATCHES]);
  });

  it('follows FLATMESH_BACKEND and rejects unknown values naming the variable', async () => {
    process.env['FLATMESH_BACKEND'] = 'cpu';
    const info = await initBackend({ quiet: true });
    assert.equal(info.name, 'cpu');
    assert.match(info.reason, /FLATMESH_BACKEND=cpu/);
    process.env['FLATMESH_BACKEND'] = 'gpu';
    await assert.rejects(initBackend({ quiet: true }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /^FLATMESH_BACKEND: must be one of node, wasm, cpu, auto \(got "gpu"\)/,
      );
      return true;
    });
  });

  it('a forced backend that cannot load is a BackendError saying what to do', async () => {
    if (nodeInstalled) {
      assert.equal((await initBackend({ prefer: 'node', quiet: true })).name, 'node');
      return;
    }
    const before = tf.getBackend();
    await assert.rejects(initBackend({ prefer: 'node', quiet: true }), (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /backend 'node' was forced by prefer but cannot load/);
      assert.match(e.message, /npm install @tensorflow\/tfjs-node/);
      return true;
    });
    assert.equal(tf.getBackend(), before, 'a failed load leaves the backend in use unchanged');
  });
});

describe('doctor', () => {
  it('reports backend, versions, machine and a throughput probe', async () => {
    const r = JSON.parse(await doctor({ json: true, probeSeconds: 0.2 }));
    assert.equal(r.backend.name, backendInfo()?.name);
    assert.equal(r.versions['@tensorflow/tfjs'], tf.version.tfjs);
    assert.match(r.versions['libp2p'], /^\d+\.\d+\.\d+/);
    assert.equal(
      r.versions['@tensorflow/tfjs-node'],
      nodeInstalled ? r.versions['@tensorflow/tfjs-node'] : 'not installed',
    );
    assert.ok(r.machine.cores >= 1);
    assert.ok(r.probe.steps >= 5 && r.probe.samplesPerSec > 0);
    const text = await doctor({ probeSeconds: 0 });
    assert.match(text, /^backend {5}\w+ \(tfjs '/);
    assert.match(text, /libp2p +\d/);
    assert.doesNotMatch(text, /throughput/);
  });

  it('rejects a probe length outside 0..60 s naming the field', async () => {
    await assert.rejects(doctor({ probeSeconds: 100 }), /probeSeconds: must be between 0 and 60/);
  });
});
