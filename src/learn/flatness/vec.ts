/**
 * Float64-accumulating vector arithmetic on flat parameter vectors (Float32Array from the model,
 * Float64Array inside the eigen solvers, where reorthogonalization needs the precision).
 *
 *   dot(a, b); norm(a); axpy(y, alpha, x);   // y += alpha·x in place
 */
export type Vec = Float32Array | Float64Array;

export function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function norm(a: Vec): number {
  return Math.sqrt(dot(a, a));
}

/** y += alpha·x, in place. */
export function axpy(y: Vec, alpha: number, x: Vec): void {
  for (let i = 0; i < y.length; i++) y[i]! += alpha * x[i]!;
}

/** a·x, a fresh Float64Array. */
export function scaled(x: Vec, a: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = a * x[i]!;
  return out;
}

/** a + t·d as float32 weights. */
export function along(a: Vec, t: number, d: Vec): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + t * d[i]!;
  return out;
}
