/**
 * What `@tensorflow/tfjs` is in the one-file bundle of the command (scripts/bundle.mjs swaps it in):
 * tfjs-core with its gradients, chained ops and the cpu backend, as the union package has them, but
 * without tfjs-layers, -converter, -data and the webgl backend, which flatmesh never uses and whose
 * module code every node process would otherwise evaluate at start (~35 ms of CPU each).
 * Not imported anywhere else: under tsx and in dist/src the union package itself is used.
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-backend-cpu';
import { version_core } from '@tensorflow/tfjs-core';

export * from '@tensorflow/tfjs-core';

/** The union package's `version`, for the parts present (flatmesh reads `version.tfjs`). */
export const version = { 'tfjs-core': version_core, tfjs: version_core };
