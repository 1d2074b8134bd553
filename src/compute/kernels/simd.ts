/**
 * Small elementwise kernels in 128-bit wasm SIMD that run directly on the wasm backend's memory, for
 * the loops tfjs-wasm has no kernel for: a scatter-add (the input gradient's col2im, see
 * the fused elementwise passes of an SGD step (`x + a·y`) and of ASAM's perturbation. Plain JavaScript does these at ~3 ns
 * per float (each float32 widened to a double and back); tfjs runs each operation as its own pass
 * with its own output; these loops do four lanes per instruction, in one pass.
 *
 * The module is assembled here, a few hundred bytes, and instantiated against the backend's own
 * `WebAssembly.Memory`, so its functions take byte offsets of tensors on the backend's heap: no copy
 * in or out. Each lane computes exactly what the scalar float32 operations compute (a product is
 * rounded to float32 before the sum, as tfjs's separate Multiply and Add round it), so results are
 * bit-identical to the unfused tfjs ops.
 *
 *   const k = simdKernels(backend);          // undefined when the memory or SIMD is unavailable
 *   k?.axpy(outOffset, xOffset, yOffset, a, count);         // out[i] = x[i] + a * y[i]
 */

export interface SimdKernels {
  /** out[i] = x[i] + a * y[i] for i < n (float32, byte offsets; out may be x). */
  axpy(out: number, x: number, y: number, a: number, n: number): void;
  /** Σ g[i]² (float32 lanes, summed at the end). */
  sumSq(g: number, n: number): number;
  /** Σ (g[i]·(|w[i]| + eta))², ASAM's scaled gradient norm squared. */
  sumSqScaled(w: number, g: number, eta: number, n: number): number;
  /** out[i] = w[i] + ((g[i]·s)·s)·factor with s = |w[i]| + eta: ASAM's perturbed weights. */
  perturbScaled(out: number, w: number, g: number, eta: number, factor: number, n: number): void;
}

/** The wasm backend's fields this uses (public in its JS, untyped in tfjs). */
interface WasmModuleHolder {
  wasm?: { asm?: { memory?: unknown } };
}

/** The WebAssembly API, typed here: the project's TypeScript lib settings do not include it. */
interface WasmApi {
  Memory: abstract new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const cache = new WeakMap<object, SimdKernels | null>();

/** The kernels bound to `backend`'s memory, or undefined when that is not a wasm backend with SIMD. */
export function simdKernels(backend: object): SimdKernels | undefined {
  let k = cache.get(backend);
  if (k === undefined) {
    k = instantiate(backend as WasmModuleHolder);
    cache.set(backend, k);
  }
  return k ?? undefined;
}

function instantiate(backend: WasmModuleHolder): SimdKernels | null {
  const memory = backend.wasm?.asm?.memory;
  if (!(memory instanceof WA.Memory)) return null;
  try {
    const mod = new WA.Module(moduleBytes());
    const inst = new WA.Instance(mod, { env: { memory } });
    return inst.exports as unknown as SimdKernels;
  } catch {
    // An engine without wasm SIMD rejects the module: callers use their tfjs fallback.
    return null;
  }
}

// ---- A minimal assembler: just the opcodes the two loops use. ----

const I32 = 0x7f;
const F32 = 0x7d;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, d],
  brIf: (d: number) => [0x0d, d],
  get: (i: number) => [0x20, i],
  set: (i: number) => [0x21, i],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  shl: [0x74],
  geU: [0x4f],
  gtU: [0x4b],
  f32Load: [0x2a, 2, 0],
  f32Store: [0x38, 2, 0],
  f32Add: [0x92],
  f32Mul: [0x94],
  v128Load: [0xfd, 0x00, 4, 0],
  v128Store: [0xfd, 0x0b, 4, 0],
  f32x4Splat: [0xfd, 0x13],
  f32x4Add: [0xfd, 0xe4, 0x01],
  f32x4Mul: [0xfd, 0xe6, 0x01],
  f32x4Abs: [0xfd, 0xe0, 0x01],
  f32x4Lane: (l: number) => [0xfd, 0x1f, l],
  f32Abs: [0x8b],
  tee: (i: number) => [0x22, i],
};

function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

function sleb(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/**
 * A loop over float offsets `i` (local `iv`, in bytes) from 0 to `end` bytes (local `endv`),
 * `step` bytes at a time, running `body` while `i + step <= end`.
 */
function byteLoop(iv: number, endv: number, step: number, body: number[]): number[] {
  return [
    ...op.block,
    ...op.loop,
    // if (i + step > end) break
    ...op.get(iv),
    ...op.i32(step),
    ...op.add,
    ...op.get(endv),
    ...op.gtU,
    ...op.brIf(1),
    ...body,
    ...op.get(iv),
    ...op.i32(step),
    ...op.add,
    ...op.set(iv),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

/** Address `base + i` on the stack. */
const at = (base: number, i: number) => [...op.get(base), ...op.get(i), ...op.add];

const V128 = 0x7b;

/** `a op b` for the two values on the stack: a v128 (SIMD) or f32 (tail) flavour of each step. */
interface Flavour {
  load: number[];
  store: number[];
  add: number[];
  mul: number[];
  abs: number[];
  splat: (local: number) => number[];
}
const SIMD: Flavour = {
  load: op.v128Load,
  store: op.v128Store,
  add: op.f32x4Add,
  mul: op.f32x4Mul,
  abs: op.f32x4Abs,
  splat: (l) => [...op.get(l), ...op.f32x4Splat],
};
const SCALAR: Flavour = {
  load: op.f32Load,
  store: op.f32Store,
  add: op.f32Add,
  mul: op.f32Mul,
  abs: op.f32Abs,
  splat: (l) => op.get(l),
};

/** `(g·(|w| + eta))` on the stack, w and g at byte `i` from bases `w`, `g`; eta from `eta`. */
function scaledGrad(f: Flavour, w: number, g: number, i: number, eta: number): number[] {
  return [...at(g, i), ...f.load, ...scale(f, w, i, eta), ...f.mul];
}

/** `(|w| + eta)` on the stack. */
function scale(f: Flavour, w: number, i: number, eta: number): number[] {
  return [...at(w, i), ...f.load, ...f.abs, ...f.splat(eta), ...f.add];
}

/**
 * A reduction Σ term²: four f32 lanes, then the lanes and the scalar tail summed into an f32 result.
 * `term(f)` leaves one term on the stack. Locals: `i`, `end`, `acc` (v128), `s` (f32), `t`.
 */
function sumOfSquares(
  n: number,
  i: number,
  end: number,
  acc: number,
  s: number,
  t: (f: Flavour) => number[],
  tmp: number,
  tmpS: number,
): number[] {
  const square = (f: Flavour, local: number) => [
    ...t(f),
    ...op.tee(local),
    ...op.get(local),
    ...f.mul,
  ];
  return [
    ...op.get(n),
    ...op.i32(2),
    ...op.shl,
    ...op.set(end),
    ...byteLoop(i, end, 16, [...op.get(acc), ...square(SIMD, tmp), ...op.f32x4Add, ...op.set(acc)]),
    ...[0, 1, 2, 3].flatMap((l) => [
      ...op.get(acc),
      ...op.f32x4Lane(l),
      ...op.get(s),
      ...op.f32Add,
      ...op.set(s),
    ]),
    ...byteLoop(i, end, 4, [...op.get(s), ...square(SCALAR, tmpS), ...op.f32Add, ...op.set(s)]),
    ...op.get(s),
    ...op.end,
  ];
}

function sumSqBody(): number[] {
  // params: g 0, n 1; locals: i 2, end 3 (i32), acc 4, tmp 5 (v128), s 6, tmpS 7 (f32)
  const [g, n, i, end, acc, tmp, s, tmpS] = [0, 1, 2, 3, 4, 5, 6, 7];
  return [
    ...uleb(3),
    2,
    I32,
    2,
    V128,
    2,
    F32,
    ...sumOfSquares(n, i, end, acc, s, (f) => [...at(g, i), ...f.load], tmp, tmpS),
  ];
}

function sumSqScaledBody(): number[] {
  // params: w 0, g 1, eta 2 (f32), n 3; locals: i 4, end 5, acc 6, tmp 7, s 8, tmpS 9
  const [w, g, eta, n, i, end, acc, tmp, s, tmpS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  return [
    ...uleb(3),
    2,
    I32,
    2,
    V128,
    2,
    F32,
    ...sumOfSquares(n, i, end, acc, s, (f) => scaledGrad(f, w, g, i, eta), tmp, tmpS),
  ];
}

function perturbScaledBody(): number[] {
  // params: out 0, w 1, g 2, eta 3 (f32), factor 4 (f32), n 5; locals: i 6, end 7
  const [out, w, g, eta, factor, n, i, end] = [0, 1, 2, 3, 4, 5, 6, 7];
  // w + ((g·s)·s)·factor, each product rounded in turn as tfjs's separate Multiply kernels round.
  const step = (f: Flavour) => [
    ...at(out, i),
    ...at(w, i),
    ...f.load,
    ...scaledGrad(f, w, g, i, eta),
    ...scale(f, w, i, eta),
    ...f.mul,
    ...f.splat(factor),
    ...f.mul,
    ...f.add,
    ...f.store,
  ];
  return [
    ...uleb(1),
    2,
    I32,
    ...op.get(n),
    ...op.i32(2),
    ...op.shl,
    ...op.set(end),
    ...byteLoop(i, end, 16, step(SIMD)),
    ...byteLoop(i, end, 4, step(SCALAR)),
    ...op.end,
  ];
}

function axpyBody(): number[] {
  // params: out 0, x 1, y 2, a 3 (f32), n 4; locals: i 5, end 6, av 7 (v128)
  const [out, x, y, a, n, i, end, av] = [0, 1, 2, 3, 4, 5, 6, 7];
  return [
    ...uleb(2),
    2,
    I32,
    1,
    V128,
    ...op.get(n),
    ...op.i32(2),
    ...op.shl,
    ...op.set(end),
    ...op.get(a),
    ...op.f32x4Splat,
    ...op.set(av),
    ...byteLoop(i, end, 16, [
      ...at(out, i),
      ...at(x, i),
      ...op.v128Load,
      ...op.get(av),
      ...at(y, i),
      ...op.v128Load,
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...op.v128Store,
    ]),
    ...byteLoop(i, end, 4, [
      ...at(out, i),
      ...at(x, i),
      ...op.f32Load,
      ...op.get(a),
      ...at(y, i),
      ...op.f32Load,
      ...op.f32Mul,
      ...op.f32Add,
      ...op.f32Store,
    ]),
    ...op.end,
  ];
}

let bytes: Uint8Array | undefined;

function moduleBytes(): Uint8Array {
  if (bytes) return bytes;
  const i = [I32];
  const f = [F32];
  const types = vec([
    [0x60, ...vec([i, i, i, f, i]), 0], // axpy(out, x, y, a, n)
    [0x60, ...vec([i, i]), 1, F32], // sumSq(g, n) -> f32
    [0x60, ...vec([i, i, f, i]), 1, F32], // sumSqScaled(w, g, eta, n) -> f32
    [0x60, ...vec([i, i, i, f, f, i]), 0], // perturbScaled(out, w, g, eta, factor, n)
  ]);
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]]);
  const names = ['axpy', 'sumSq', 'sumSqScaled', 'perturbScaled'];
  const funcs = vec(names.map((_, k) => [k]));
  const exports = vec(names.map((nm, k) => [...name(nm), 0x00, k]));
  const body = (b: number[]) => [...uleb(b.length), ...b];
  const code = vec([axpyBody(), sumSqBody(), sumSqScaledBody(), perturbScaledBody()].map(body));
  bytes = Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, code),
  ]);
  return bytes;
}
