/**
 * Kernel patches that make the wasm backend train fast: registered once, after the wasm backend is
 * initialized, and only for backend 'wasm' (the cpu and node backends keep tfjs's own kernels, which
 * the tests use as the reference).
 *
 *   await tf.setBackend('wasm');
 *   const applied = applyWasmPatches();  // ['matmul-explicit-transpose', ...]
 *
 * Patches (name: what and why):
 * - `matmul-explicit-transpose`: BatchMatMul/_FusedMatMul with transposeA/B transpose first, then
 *   run the fast untransposed path (MLP: ~3,200 -> ~5,000 samples/s measured on this kind of box).
 * - `matmul-simd-gemm`: BatchMatMul/_FusedMatMul as ./gemm.ts's SIMD product on the operands as
 *   they lie, in every transpose mode (no XNNPACK re-packing of new weights on every step); what it
 *   does not cover goes to the kernel below it (`matmul-explicit-transpose` when applied). Only
 *   where the SIMD module instantiates.
 * - `conv2d-backprop-filter`: the missing Conv2DBackpropFilter kernel, as one dilated conv2d.
 * - `conv2d-backprop-input`: stride-1 Conv2DBackpropInput as a conv2d with the rotated filter
 *   (XNNPACK) instead of the backend's scalar loop.
 * - `conv2d-gemm`: Conv2D, and the two conv gradient patches above, for stride-1 convolutions, as
 *   im2col/col2im and ./gemm.ts's SIMD GEMM, one image at a time (only where the SIMD module
 *   instantiates).
 * - `maxpool-grad`: a correct MaxPoolGrad (the shipped one loses the gradient of windows whose
 *   maximum is negative).
 * - `sum-leading-axes`: Sum over leading axes (bias gradients) in one pass instead of
 *   transpose-then-reduce.
 * - `identity-shares-data`: Identity (the engine's copy of every tensor a gradient keeps) and Cast
 *   to the same dtype share the data instead of copying it.
 * - `fused-optimizer-passes`: the kernels of ../fused.ts (SGD's `w + a·g`, ASAM's norm and
 *   perturbation, one wasm SIMD pass each instead of 2-9 tfjs kernels); new kernel names, only
 *   registered where the SIMD module instantiates.
 * - `fused-layers`: the kernels of ../layers.ts (a dense layer's product + bias + ReLU, each of its
 *   three gradients, the softmax cross-entropy and its gradient, one kernel each instead of 3-25
 *   tfjs kernels); new kernel names, only registered where the SIMD GEMM instantiates.
 * - `gemm-fma`: the conv patches and `fused-layers` run ./gemm.ts's relaxed-SIMD multiply-add
 *   variant (one FMA instruction per 4 products where the CPU has FMA3; 15-25% less CPU on the
 *   convs). Only where that module instantiates (V8 with relaxed SIMD, see gemm.ts). BatchMatMul
 *   keeps the plain GEMM (see installMatMul).
 */
import * as tf from '@tensorflow/tfjs';
import { ADD_SCALED, ASAM_PERTURB, ASAM_SUM_SQ } from '../fused.js';
import { LAYER_KERNELS, registerLayerGradients } from '../layers.js';
import { conv2dBackpropFilterKernel, conv2dBackpropInputKernel } from './conv2d-backprop.js';
import { conv2dGemmKernel } from './conv2d-forward.js';
import { fusedKernels } from './fused-kernels.js';
import { fmaGemmKernels, type GemmKernels, gemmKernels } from './gemm.js';
import { sharingIdentityKernel } from './identity.js';
import { layerKernels } from './layer-kernels.js';
import { explicitTransposeMatMul } from './matmul.js';
import { gemmMatMulKernel } from './matmul-gemm.js';
import { maxPoolGradKernel } from './maxpool-grad.js';
import { simdKernels } from './simd.js';
import { sumLeadingAxesKernel } from './sum-leading.js';

const BACKEND = 'wasm';

export const WASM_PATCHES = [
  'matmul-explicit-transpose',
  'matmul-simd-gemm',
  'conv2d-backprop-filter',
  'conv2d-backprop-input',
  'conv2d-gemm',
  'maxpool-grad',
  'sum-leading-axes',
  'identity-shares-data',
  'fused-optimizer-passes',
  'fused-layers',
  'gemm-fma',
] as const;
export type WasmPatch = (typeof WASM_PATCHES)[number];

/** Originals of the kernels we replace, kept so the patches can be removed again (benchmarks). */
const originals = new Map<string, tf.KernelConfig>();
/** Kernels registered here at least once (restoring any other would drop the backend's own). */
const replaced = new Set<string>();
const applied = new Set<WasmPatch>();

function kernel(name: string): tf.KernelConfig {
  const k = originals.get(name) ?? tf.getKernel(name, BACKEND);
  if (!k)
    throw new Error(`wasm backend has no ${name} kernel; is @tensorflow/tfjs-backend-wasm loaded?`);
  return k;
}

function replace(config: tf.KernelConfig): void {
  const name = config.kernelName;
  const current = tf.getKernel(name, BACKEND);
  // The backend's own kernel, never one of ours re-registered (a GEMM change re-installs them).
  if (current && !originals.has(name) && !replaced.has(name)) originals.set(name, current);
  if (current) tf.unregisterKernel(name, BACKEND);
  tf.registerKernel(config);
  replaced.add(name);
}

function restore(name: string): void {
  if (!replaced.has(name)) return;
  const orig = originals.get(name);
  if (tf.getKernel(name, BACKEND)) tf.unregisterKernel(name, BACKEND);
  if (orig) tf.registerKernel(orig);
}

/** The GEMM the patches in force use: the FMA variant with `gemm-fma`, where it instantiates. */
function gemm(): GemmKernels | undefined {
  const backend = tf.findBackend(BACKEND) as object;
  return (applied.has('gemm-fma') ? fmaGemmKernels(backend) : undefined) ?? gemmKernels(backend);
}

/** (Re-)registers the fused layer kernels with the GEMM now in force. */
function installLayers(): void {
  const g = gemm();
  const simd = simdKernels(tf.findBackend(BACKEND) as object);
  if (!g || !simd) return;
  registerLayerGradients();
  for (const k of layerKernels(BACKEND, g, simd)) replace(k);
}

/**
 * (Re-)registers BatchMatMul and _FusedMatMul for the matmul patches now applied: the SIMD GEMM on
 * top of the explicit-transpose wrapper on top of the backend's own kernel, each layer optional.
 */
function installMatMul(): void {
  // The plain GEMM even with `gemm-fma`: tf.matMul stays bit-identical to XNNPACK's products,
  // which the batched simulator's per-slice products (src/learn/batched-matmul.ts) are compared to.
  const g = gemmKernels(tf.findBackend(BACKEND) as object);
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const base = kernel(name);
    let k = base;
    if (applied.has('matmul-explicit-transpose')) {
      k = explicitTransposeMatMul(k, kernel('Transpose').kernelFunc, {
        swap: name === 'BatchMatMul',
      });
    }
    if (applied.has('matmul-simd-gemm') && g) k = gemmMatMulKernel(k, g);
    if (k === base) restore(name);
    else replace(k);
  }
}

/**
 * (Re-)registers Conv2DBackpropFilter, Conv2DBackpropInput and Conv2D for the conv patches now
 * applied (`conv2d-gemm` refines the other two, and replaces Conv2D).
 */
function installConvGradients(): void {
  const k = {
    conv2d: kernel('Conv2D').kernelFunc,
    transpose: kernel('Transpose').kernelFunc,
    slice: kernel('Slice').kernelFunc,
    reverse: kernel('Reverse').kernelFunc,
    gemm: applied.has('conv2d-gemm') ? gemm() : undefined,
  };
  if (applied.has('conv2d-backprop-filter')) replace(conv2dBackpropFilterKernel(k, BACKEND));
  else restore('Conv2DBackpropFilter');
  if (applied.has('conv2d-backprop-input')) {
    replace(conv2dBackpropInputKernel(k, kernel('Conv2DBackpropInput')));
  } else restore('Conv2DBackpropInput');
  if (k.gemm) replace(conv2dGemmKernel(kernel('Conv2D'), k.gemm));
  else restore('Conv2D');
}

/** Re-registers the kernels that run `gemm()`, after the choice of GEMM (`gemm-fma`) changed. */
function reinstallGemmUsers(): void {
  installConvGradients();
  if (applied.has('fused-layers')) installLayers();
}

/**
 * Registers the selected patches (default: all) for the wasm backend. Idempotent; returns the names
 * of all patches in force afterwards.
 */
export function applyWasmPatches(which: readonly WasmPatch[] = WASM_PATCHES): WasmPatch[] {
  for (const patch of which) {
    if (applied.has(patch)) continue;
    switch (patch) {
      case 'matmul-explicit-transpose':
      case 'matmul-simd-gemm':
        if (patch === 'matmul-simd-gemm' && !gemmKernels(tf.findBackend(BACKEND) as object))
          continue;
        applied.add(patch);
        installMatMul();
        continue;
      case 'conv2d-backprop-filter':
      case 'conv2d-backprop-input':
      case 'conv2d-gemm':
        if (patch === 'conv2d-gemm' && !gemm()) continue;
        applied.add(patch);
        installConvGradients();
        continue;
      case 'maxpool-grad':
        replace(maxPoolGradKernel(BACKEND));
        break;
      case 'sum-leading-axes':
        replace(sumLeadingAxesKernel(kernel('Sum')));
        break;
      case 'identity-shares-data':
        replace(sharingIdentityKernel(kernel('Identity')));
        replace(sharingIdentityKernel(kernel('Cast')));
        break;
      case 'fused-optimizer-passes': {
        const simd = simdKernels(tf.findBackend(BACKEND) as object);
        if (!simd) continue; // not applied: ../fused.ts runs plain tfjs ops
        for (const k of fusedKernels(BACKEND, simd)) replace(k);
        break;
      }
      case 'fused-layers':
        // Not applied where the SIMD modules do not instantiate: ../layers.ts runs plain tfjs ops.
        if (!gemm() || !simdKernels(tf.findBackend(BACKEND) as object)) continue;
        applied.add(patch);
        installLayers();
        continue;
      case 'gemm-fma':
        if (!fmaGemmKernels(tf.findBackend(BACKEND) as object)) continue;
        applied.add(patch);
        reinstallGemmUsers();
        continue;
      default: {
        const never: never = patch;
        throw new Error(`unknown wasm patch ${String(never)}`);
      }
    }
    applied.add(patch);
  }
  return WASM_PATCHES.filter((p) => applied.has(p));
}

/** Removes patches again (default: all), restoring the backend's original kernels. For benchmarks. */
export function removeWasmPatches(which: readonly WasmPatch[] = WASM_PATCHES): WasmPatch[] {
  for (const patch of which) {
    if (!applied.has(patch)) continue;
    switch (patch) {
      case 'matmul-explicit-transpose':
      case 'matmul-simd-gemm':
        applied.delete(patch);
        installMatMul();
        continue;
      case 'conv2d-backprop-filter':
      case 'conv2d-backprop-input':
      case 'conv2d-gemm':
        applied.delete(patch);
        installConvGradients();
        continue;
      case 'maxpool-grad':
        restore('MaxPoolGrad');
        break;
      case 'sum-leading-axes':
        restore('Sum');
        break;
      case 'identity-shares-data':
        restore('Identity');
        restore('Cast');
        break;
      case 'fused-optimizer-passes':
        for (const name of [ADD_SCALED, ASAM_SUM_SQ, ASAM_PERTURB]) restore(name);
        break;
      case 'fused-layers':
        for (const name of LAYER_KERNELS) restore(name);
        break;
      case 'gemm-fma':
        applied.delete(patch);
        reinstallGemmUsers();
        continue;
      default: {
        const never: never = patch;
        throw new Error(`unknown wasm patch ${String(never)}`);
      }
    }
    applied.delete(patch);
  }
  return WASM_PATCHES.filter((p) => applied.has(p));
}
