/**
 * Small elementwise kernels in 128-bit wasm SIMD that run directly on the wasm backend's memory, for
 * the loops tfjs-wasm has no kernel for: the fused elementwise passes of an SGD step (`x + a·y`) and
 * of ASAM's perturbation, the 2x2 max-pool gradient, float64 row sums and a ReLU's gradient mask.
 * Plain JavaScript does these at ~3 ns
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
import { assemble, F32, I32, op, perBackend, V128, whileLoop } from './wasm-asm.js';

export interface SimdKernels {
  /** out[i] = x[i] + a * y[i] for i < n (float32, byte offsets; out may be x). */
  axpy(out: number, x: number, y: number, a: number, n: number): void;
  /** Σ g[i]² (float32 lanes, summed at the end). */
  sumSq(g: number, n: number): number;
  /** Σ (g[i]·(|w[i]| + eta))², ASAM's scaled gradient norm squared. */
  sumSqScaled(w: number, g: number, eta: number, n: number): number;
  /** out[i] = w[i] + ((g[i]·s)·s)·factor with s = |w[i]| + eta: ASAM's perturbed weights. */
  perturbScaled(out: number, w: number, g: number, eta: number, factor: number, n: number): void;
  /**
   * MaxPoolGrad of one output row of 2x2 windows, stride 2: x and dx point at the window row's
   * top-left ([2, W, C] floats, `rowBytes` = W·C·4 apart), dy at the output row [OW, C]. Each
   * window's first maximum in row-major order (strictly greater than all before it, starting from
   * -Infinity, as the cpu backend picks) gets dy, its other three positions 0. C a multiple of 4.
   */
  maxPool2x2GradRow(
    dx: number,
    x: number,
    dy: number,
    ow: number,
    rowBytes: number,
    c: number,
  ): void;
  /** acc[j] += x[i·cols + j] for every row i < rows: float64 sums (acc) of float32 rows (x). */
  sumRowsF64(acc: number, x: number, rows: number, cols: number): void;
  /** out[i] = y[i] > 0 ? dy[i] : 0: a ReLU's gradient from its output y (out may be dy). */
  reluMask(out: number, dy: number, y: number, n: number): void;
}

/** The kernels bound to `backend`'s memory, or undefined when that is not a wasm backend with SIMD. */
export const simdKernels = perBackend<SimdKernels>(() => moduleBytes());

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
  load: op.v128Load(),
  store: op.v128Store(),
  add: op.f32x4Add,
  mul: op.f32x4Mul,
  abs: op.f32x4Abs,
  splat: (l) => [...op.get(l), ...op.f32x4Splat],
};
const SCALAR: Flavour = {
  load: op.f32Load(),
  store: op.f32Store(),
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
  ];
}

function sumSqBody(): number[] {
  // params: g 0, n 1; locals: i 2, end 3 (i32), acc 4, tmp 5 (v128), s 6, tmpS 7 (f32)
  const [g, n, i, end, acc, tmp, s, tmpS] = [0, 1, 2, 3, 4, 5, 6, 7];
  return [...sumOfSquares(n, i, end, acc, s, (f) => [...at(g, i), ...f.load], tmp, tmpS)];
}

function sumSqScaledBody(): number[] {
  // params: w 0, g 1, eta 2 (f32), n 3; locals: i 4, end 5, acc 6, tmp 7, s 8, tmpS 9
  const [w, g, eta, n, i, end, acc, tmp, s, tmpS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  return [...sumOfSquares(n, i, end, acc, s, (f) => scaledGrad(f, w, g, i, eta), tmp, tmpS)];
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
    ...op.get(n),
    ...op.i32(2),
    ...op.shl,
    ...op.set(end),
    ...byteLoop(i, end, 16, step(SIMD)),
    ...byteLoop(i, end, 4, step(SCALAR)),
  ];
}

function axpyBody(): number[] {
  // params: out 0, x 1, y 2, a 3 (f32), n 4; locals: i 5, end 6, av 7 (v128)
  const [out, x, y, a, n, i, end, av] = [0, 1, 2, 3, 4, 5, 6, 7];
  return [
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
      ...op.v128Load(),
      ...op.get(av),
      ...at(y, i),
      ...op.v128Load(),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...op.v128Store(),
    ]),
    ...byteLoop(i, end, 4, [
      ...at(out, i),
      ...at(x, i),
      ...op.f32Load(),
      ...op.get(a),
      ...at(y, i),
      ...op.f32Load(),
      ...op.f32Mul,
      ...op.f32Add,
      ...op.f32Store(),
    ]),
  ];
}

function maxPool2x2GradRowBody(): number[] {
  // params: dx 0, x 1, dy 2, OW 3, rowBytes 4, C 5; locals: ow, c, cb, px, pd, pg (i32),
  // m, w00, w01, w10, w11, g (v128)
  const [dx, x, dy, OW, rowBytes, C, ow, c, cb, px, pd, pg] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
  ];
  const [m, w00, w01, w10, w11, g] = [12, 13, 14, 15, 16, 17];
  // The four window positions, as byte offsets from the top-left: (0,0), (0,1), (1,0), (1,1).
  const offsets = [
    [],
    op.get(cb),
    op.get(rowBytes),
    [...op.get(rowBytes), ...op.get(cb), ...op.add],
  ];
  const atPos = (base: number, k: number) => [
    ...op.get(base),
    ...op.get(c),
    ...op.add,
    ...(k ? [...offsets[k]!, ...op.add] : []),
  ];
  const wins = [w00, w01, w10, w11];
  const channelStep = [
    ...op.f32(Number.NEGATIVE_INFINITY),
    ...op.f32x4Splat,
    ...op.set(m),
    ...wins.flatMap((w, k) => [
      ...atPos(px, k),
      ...op.v128Load(),
      ...op.tee(g),
      ...op.get(m),
      ...op.f32x4Gt,
      ...op.set(w),
      // m = w ? v : m (g holds v for the moment)
      ...(k < 3
        ? [...op.get(g), ...op.get(m), ...op.get(w), ...op.v128Bitselect, ...op.set(m)]
        : []),
    ]),
    ...[...op.get(pg), ...op.get(c), ...op.add, ...op.v128Load(), ...op.set(g)],
    // Position k gets dy where it won and no later position did; m now collects the later wins.
    ...[...op.get(w11), ...op.set(m)],
    ...[3, 2, 1, 0].flatMap((k) => [
      ...atPos(pd, k),
      ...op.get(g),
      ...(k === 3 ? op.get(w11) : [...op.get(wins[k]!), ...op.get(m), ...op.v128AndNot]),
      ...op.v128And,
      ...op.v128Store(),
      ...(k > 0 && k < 3 ? [...op.get(m), ...op.get(wins[k]!), ...op.v128Or, ...op.set(m)] : []),
    ]),
  ];
  return [
    ...[...op.get(C), ...op.i32(2), ...op.shl, ...op.set(cb)],
    ...[...op.get(x), ...op.set(px), ...op.get(dx), ...op.set(pd), ...op.get(dy), ...op.set(pg)],
    ...[...op.get(OW), ...op.set(ow)],
    ...op.block,
    ...op.loop,
    ...[...op.get(ow), ...op.eqz, ...op.brIf(1)],
    ...[...op.i32(0), ...op.set(c)],
    ...byteLoop(c, cb, 16, channelStep),
    ...[...op.get(px), ...op.get(cb), ...op.i32(1), ...op.shl, ...op.add, ...op.set(px)],
    ...[...op.get(pd), ...op.get(cb), ...op.i32(1), ...op.shl, ...op.add, ...op.set(pd)],
    ...[...op.get(pg), ...op.get(cb), ...op.add, ...op.set(pg)],
    ...[...op.get(ow), ...op.i32(1), ...op.sub, ...op.set(ow)],
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

function sumRowsF64Body(): number[] {
  // params: acc 0, x 1, rows 2, cols 3; locals: r 4, j 5, px 6 (i32)
  const [acc, x, rows, cols, r, j, px] = [0, 1, 2, 3, 4, 5, 6];
  const at = (base: number, shift: number) => [
    ...op.get(base),
    ...op.get(j),
    ...op.i32(shift),
    ...op.shl,
    ...op.add,
  ];
  // Two columns per step: two floats widened to a float64 pair, added to the pair in acc.
  const pair = [
    ...at(acc, 3),
    ...at(acc, 3),
    ...op.v128Load(),
    ...at(px, 2),
    ...op.v128Load64Zero(),
    ...op.f64x2PromoteLow,
    ...op.f64x2Add,
    ...op.v128Store(),
    ...[...op.get(j), ...op.i32(2), ...op.add, ...op.set(j)],
  ];
  const single = [
    ...at(acc, 3),
    ...[...at(acc, 3), ...op.f64Load()],
    ...[...at(px, 2), ...op.f32Load(), ...op.f64PromoteF32],
    ...[...op.f64Add, ...op.f64Store()],
    ...[...op.get(j), ...op.i32(1), ...op.add, ...op.set(j)],
  ];
  const loop = whileLoop;
  return [
    ...[...op.get(x), ...op.set(px)],
    ...[...op.get(rows), ...op.set(r)],
    ...loop(op.get(r), [
      ...[...op.i32(0), ...op.set(j)],
      ...loop([...op.get(j), ...op.i32(2), ...op.add, ...op.get(cols), ...op.gtU, ...op.eqz], pair),
      ...loop([...op.get(j), ...op.get(cols), ...op.ne], single),
      ...[...op.get(px), ...op.get(cols), ...op.i32(2), ...op.shl, ...op.add, ...op.set(px)],
      ...[...op.get(r), ...op.i32(1), ...op.sub, ...op.set(r)],
    ]),
  ];
}

function reluMaskBody(): number[] {
  // params: out 0, dy 1, y 2, n 3; locals: i 4, end 5
  const [out, dy, y, n, i, end] = [0, 1, 2, 3, 4, 5];
  return [
    ...op.get(n),
    ...op.i32(2),
    ...op.shl,
    ...op.set(end),
    // dy & (y > 0 lanes: all ones)
    ...byteLoop(i, end, 16, [
      ...at(out, i),
      ...at(dy, i),
      ...op.v128Load(),
      ...at(y, i),
      ...op.v128Load(),
      ...op.v128Zero,
      ...op.f32x4Gt,
      ...op.v128And,
      ...op.v128Store(),
    ]),
    // select(dy, 0, y > 0)
    ...byteLoop(i, end, 4, [
      ...at(out, i),
      ...at(dy, i),
      ...op.f32Load(),
      ...op.f32(0),
      ...at(y, i),
      ...op.f32Load(),
      ...op.f32(0),
      ...op.f32Gt,
      ...op.select,
      ...op.f32Store(),
    ]),
  ];
}

let bytes: Uint8Array | undefined;

function moduleBytes(): Uint8Array {
  bytes ??= assemble([
    // axpy(out, x, y, a, n); locals i, end (i32), av (v128)
    {
      name: 'axpy',
      params: [I32, I32, I32, F32, I32],
      results: [],
      locals: [I32, I32, V128],
      body: axpyBody(),
    },
    // sumSq(g, n) -> f32; locals i, end (i32), acc, tmp (v128), s, tmpS (f32)
    {
      name: 'sumSq',
      params: [I32, I32],
      results: [F32],
      locals: [I32, I32, V128, V128, F32, F32],
      body: sumSqBody(),
    },
    // sumSqScaled(w, g, eta, n) -> f32; the same locals
    {
      name: 'sumSqScaled',
      params: [I32, I32, F32, I32],
      results: [F32],
      locals: [I32, I32, V128, V128, F32, F32],
      body: sumSqScaledBody(),
    },
    // perturbScaled(out, w, g, eta, factor, n); locals i, end (i32)
    {
      name: 'perturbScaled',
      params: [I32, I32, I32, F32, F32, I32],
      results: [],
      locals: [I32, I32],
      body: perturbScaledBody(),
    },
    {
      name: 'maxPool2x2GradRow',
      params: [I32, I32, I32, I32, I32, I32],
      results: [],
      locals: [...new Array<typeof I32>(6).fill(I32), ...new Array<typeof V128>(6).fill(V128)],
      body: maxPool2x2GradRowBody(),
    },
    {
      name: 'sumRowsF64',
      params: [I32, I32, I32, I32],
      results: [],
      locals: [I32, I32, I32],
      body: sumRowsF64Body(),
    },
    {
      name: 'reluMask',
      params: [I32, I32, I32, I32],
      results: [],
      locals: [I32, I32],
      body: reluMaskBody(),
    },
  ]);
  return bytes;
}
