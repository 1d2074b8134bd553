/**
 * A model's parameters as one flat Float32Array (the unit that is gossiped, averaged, checkpointed
 * and SWA-averaged), the per-tensor layout of that vector, and a signature that tells whether two
 * models can be mixed at all.
 *
 *   const x = readFlat(model);          // fresh copy, params concatenated in model.params order
 *   writeFlat(model, mixed);            // copies; throws ModelMismatchError on a length mismatch
 *   modelSignature(model);              // '3f9c0a...' (16 hex chars of sha256 over names+shapes)
 *   paramLayout(model);                 // [{ name, kind, shape, offset, size }, ...]
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { ModelMismatchError } from '../errors.js';
import type { Model, ParamKind } from './model.js';
import { readInto } from './wasm-heap.js';

export interface ParamSlot {
  readonly name: string;
  readonly kind: ParamKind;
  readonly shape: readonly number[];
  /** Offset of the first element in the flat vector. */
  readonly offset: number;
  readonly size: number;
}

export function paramLayout(model: Pick<Model, 'params'>): ParamSlot[] {
  let offset = 0;
  return model.params.map((p) => {
    const slot = {
      name: p.name,
      kind: p.kind,
      shape: [...p.variable.shape],
      offset,
      size: p.variable.size,
    };
    offset += p.variable.size;
    return slot;
  });
}

/** A fresh copy of all parameters, concatenated in `model.params` order. */
export function readFlat(model: Pick<Model, 'params' | 'size'>): Float32Array {
  const out = new Float32Array(model.size);
  let offset = 0;
  for (const p of model.params) {
    // Copied into `out` (dataSync returns the backend's own buffer on cpu: never keep it); on wasm
    // straight from its memory, without the intermediate copy dataSync makes.
    readInto(p.variable, out, offset);
    offset += p.variable.size;
  }
  return out;
}

/**
 * Writes a flat vector into the model's variables. The values are copied: the cpu backend keeps a
 * reference to the array a tensor is built from (so it gets a copy of each part), and the caller
 * usually reuses `flat`; the other backends copy the parts into their own memory themselves (a copy
 * here would only be garbage: a model's size per node and round).
 */
export function writeFlat(model: Pick<Model, 'params' | 'size'>, flat: Float32Array): void {
  if (flat.length !== model.size) {
    throw new ModelMismatchError(
      `parameter vector has ${flat.length} values but the model has ${model.size}; both sides must use the same model and input shape`,
    );
  }
  const aliasing = tf.getBackend() === 'cpu';
  let offset = 0;
  for (const p of model.params) {
    const n = p.variable.size;
    const part = flat.subarray(offset, offset + n);
    const t = tf.tensor(aliasing ? part.slice() : part, p.variable.shape, 'float32');
    p.variable.assign(t);
    t.dispose();
    offset += n;
  }
}

/** 16 hex chars of sha256 over the parameter names and shapes, in order. */
export function modelSignature(model: Pick<Model, 'params'>): string {
  const desc = model.params.map((p) => `${p.name}:${p.variable.shape.join('x')}`).join(';');
  return createHash('sha256').update(desc).digest('hex').slice(0, 16);
}
