/**
 * A matrix product in 128-bit wasm SIMD that reads both operands where they lie: no packing, no
 * copy of the weights. tfjs-wasm's XNNPACK product packs its right-hand operand into a blocked copy
 * whenever that operand's data is new, and a weight is new after every optimizer step: on a batch-32
 * MLP's 784x200 layer the packing costs ~1.5x the product itself (0.88 ms against 0.36 ms with the
 * packed weights cached, measured here). These loops stream the weights instead, at XNNPACK's rate.
 *
 * `gemm` computes C = A·B (+ bias per column, then ReLU if asked) for any element strides of A and
 * C, and B with unit stride along its columns:
 *   A(m, k) at a + m·sam + k·sak      B(k, n) at b + k·sbk + 4n      C(m, n) at c + m·scm + n·scn
 * (byte offsets into the backend's memory). Tiles of 4 rows x 8 columns: per k, two vector loads of
 * B's row, one broadcast load per row of A, eight multiply-adds into eight v128 accumulators; rows
 * and columns that do not fill a tile run 1-row, 4-column and single-column tiles. Sums run over k
 * in order, one product rounded to float32 at a time (as tfjs's scalar loops, in a different order
 * of k than XNNPACK's blocks: equal within float32 rounding).
 *
 *   const k = gemmKernels(backend);   // undefined: no wasm memory or no SIMD
 *   k?.gemm(c, a, b, 0, M, N, K, 4 * K, 4, 4 * N, 4 * N, 4, 0);   // C = A·B, all row-major
 *   k?.transpose(out, x, rows, cols);                               // out = xᵀ (float32)
 */
import { addTo, assemble, F32, I32, op, perBackend, V128, whileLoop } from './wasm-asm.js';

export interface GemmKernels {
  gemm(
    c: number,
    a: number,
    b: number,
    bias: number,
    M: number,
    N: number,
    K: number,
    sam: number,
    sak: number,
    sbk: number,
    scm: number,
    scn: number,
    relu: number,
  ): void;
  /** out[j·rows + i] = x[i·cols + j] (float32, byte offsets). */
  transpose(out: number, x: number, rows: number, cols: number): void;
}

/** The kernels bound to `backend`'s memory, or undefined when that is not a wasm backend with SIMD. */
export const gemmKernels = perBackend<GemmKernels>(() => moduleBytes());

// gemm's params and locals, by index.
const [C, A, B, BIAS, M, N, K, SAM, SAK, SBK, SCM, SCN, RELU] = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
];
const [M0, N0, KI, PB, PC] = [13, 14, 15, 16, 17];
const PA = [18, 19, 20, 21];
const ACC = [22, 23, 24, 25, 26, 27, 28, 29]; // v128: row r, vector v at 2r + v
const [B0, B1, AV] = [30, 31, 32];
const SACC = [33, 34, 35, 36]; // f32 accumulators of single-column tiles
const SB = 37;
const GEMM_LOCALS = [
  ...new Array<typeof I32>(9).fill(I32),
  ...new Array<typeof V128>(11).fill(V128),
  ...new Array<typeof F32>(5).fill(F32),
];

/** Tile kinds: two vectors (8 columns), one vector (4), or a single column. */
type Kind = 'v2' | 'v1' | 's';

/** One tile of `rows` rows at (m0, n0): the k loop, then bias, ReLU and the stores. */
function tile(rows: number, kind: Kind): number[] {
  const nv = kind === 'v2' ? 2 : 1;
  const acc = (r: number, v: number) => (kind === 's' ? SACC[r]! : ACC[2 * r + v]!);
  const code: number[] = [];
  for (let r = 0; r < rows; r++) {
    // pa_r = a + (m0 + r)·sam
    code.push(...op.get(A), ...op.get(M0), ...op.i32(r), ...op.add, ...op.get(SAM), ...op.mul);
    code.push(...op.add, ...op.set(PA[r]!));
  }
  code.push(...op.get(B), ...op.get(N0), ...op.i32(2), ...op.shl, ...op.add, ...op.set(PB));
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < nv; v++)
      code.push(...(kind === 's' ? op.f32(0) : op.v128Zero), ...op.set(acc(r, v)));
  }
  code.push(...op.get(K), ...op.set(KI));
  const step: number[] = [];
  if (kind === 's') {
    step.push(...op.get(PB), ...op.f32Load(), ...op.set(SB));
    for (let r = 0; r < rows; r++) {
      step.push(...op.get(acc(r, 0)), ...op.get(PA[r]!), ...op.f32Load(), ...op.get(SB));
      step.push(...op.f32Mul, ...op.f32Add, ...op.set(acc(r, 0)));
    }
  } else {
    step.push(...op.get(PB), ...op.v128Load(), ...op.set(B0));
    if (nv === 2) step.push(...op.get(PB), ...op.v128Load(16), ...op.set(B1));
    for (let r = 0; r < rows; r++) {
      step.push(...op.get(acc(r, 0)), ...op.get(PA[r]!), ...op.v128Load32Splat(), ...op.tee(AV));
      step.push(...op.get(B0), ...op.f32x4Mul, ...op.f32x4Add, ...op.set(acc(r, 0)));
      if (nv === 2) {
        step.push(...op.get(acc(r, 1)), ...op.get(AV), ...op.get(B1), ...op.f32x4Mul);
        step.push(...op.f32x4Add, ...op.set(acc(r, 1)));
      }
    }
  }
  for (let r = 0; r < rows; r++) step.push(...addTo(PA[r]!, op.get(SAK)));
  step.push(...addTo(PB, op.get(SBK)), ...op.get(KI), ...op.i32(1), ...op.sub, ...op.set(KI));
  code.push(...whileLoop(op.get(KI), step));
  for (let r = 0; r < rows; r++) {
    // pc = c + (m0 + r)·scm + n0·scn
    code.push(...op.get(C), ...op.get(M0), ...op.i32(r), ...op.add, ...op.get(SCM), ...op.mul);
    code.push(...op.add, ...op.get(N0), ...op.get(SCN), ...op.mul, ...op.add, ...op.set(PC));
    for (let v = 0; v < nv; v++) code.push(...epilogue(kind, acc(r, v), v));
  }
  return code;
}

/** Bias, ReLU and the store of one accumulator (vector `v` of its row). */
function epilogue(kind: Kind, acc: number, v: number): number[] {
  const biasAt = [...op.get(BIAS), ...op.get(N0), ...op.i32(2), ...op.shl, ...op.add];
  if (kind === 's') {
    return [
      ...op.get(BIAS),
      ...op.if,
      ...[...op.get(acc), ...biasAt, ...op.f32Load(), ...op.f32Add, ...op.set(acc)],
      ...op.end,
      ...op.get(RELU),
      ...op.if,
      // x < 0 ? 0 : x
      ...[...op.f32(0), ...op.get(acc), ...op.get(acc), ...op.f32(0), ...op.f32Lt, ...op.select],
      ...op.set(acc),
      ...op.end,
      ...op.get(PC),
      ...op.get(acc),
      ...op.f32Store(),
    ];
  }
  const lanes = [0, 1, 2, 3].flatMap((l) => [
    ...op.get(PC),
    ...op.i32(4 * v + l),
    ...op.get(SCN),
    ...op.mul,
    ...op.add,
    ...op.get(acc),
    ...op.f32x4Lane(l),
    ...op.f32Store(),
  ]);
  return [
    ...op.get(BIAS),
    ...op.if,
    ...[...op.get(acc), ...biasAt, ...op.v128Load(16 * v), ...op.f32x4Add, ...op.set(acc)],
    ...op.end,
    ...op.get(RELU),
    ...op.if,
    // pmax(x, 0) = x < 0 ? 0 : x
    ...[...op.get(acc), ...op.v128Zero, ...op.f32x4Pmax, ...op.set(acc)],
    ...op.end,
    // Unit column stride: one vector store; else four lane stores.
    ...op.get(SCN),
    ...op.i32(4),
    ...op.ne,
    ...op.if,
    ...lanes,
    ...op.else,
    ...[...op.get(PC), ...op.get(acc), ...op.v128Store(16 * v)],
    ...op.end,
  ];
}

/** `local + step <= limit` (unsigned), as a loop condition. */
const fits = (local: number, step: number, limit: number) => [
  ...op.get(local),
  ...op.i32(step),
  ...op.add,
  ...op.get(limit),
  ...op.gtU,
  ...op.eqz,
];

/** All rows of one column block of `kind`: 4-row tiles, then single rows. */
function columnBlock(kind: Kind): number[] {
  return [
    ...op.i32(0),
    ...op.set(M0),
    ...whileLoop(fits(M0, 4, M), [...tile(4, kind), ...addTo(M0, op.i32(4))]),
    ...whileLoop(fits(M0, 1, M), [...tile(1, kind), ...addTo(M0, op.i32(1))]),
  ];
}

function gemmBody(): number[] {
  return [
    ...op.i32(0),
    ...op.set(N0),
    ...whileLoop(fits(N0, 8, N), [...columnBlock('v2'), ...addTo(N0, op.i32(8))]),
    ...fits(N0, 4, N),
    ...op.if,
    ...[...columnBlock('v1'), ...addTo(N0, op.i32(4))],
    ...op.end,
    ...whileLoop(fits(N0, 1, N), [...columnBlock('s'), ...addTo(N0, op.i32(1))]),
  ];
}

function transposeBody(): number[] {
  // params: out 0, x 1, rows 2, cols 3; locals: i 4, j 5, px 6, po 7
  const [out, x, rows, cols, i, j, px, po] = [0, 1, 2, 3, 4, 5, 6, 7];
  const rowStep = [...op.get(rows), ...op.i32(2), ...op.shl];
  return [
    ...op.i32(0),
    ...op.set(i),
    ...whileLoop(fits(i, 1, rows), [
      // px = x + i·cols·4, po = out + i·4
      ...[
        ...op.get(x),
        ...op.get(i),
        ...op.get(cols),
        ...op.mul,
        ...op.i32(2),
        ...op.shl,
        ...op.add,
        ...op.set(px),
      ],
      ...[...op.get(out), ...op.get(i), ...op.i32(2), ...op.shl, ...op.add, ...op.set(po)],
      ...op.get(cols),
      ...op.set(j),
      ...whileLoop(op.get(j), [
        ...[...op.get(po), ...op.get(px), ...op.f32Load(), ...op.f32Store()],
        ...addTo(px, op.i32(4)),
        ...addTo(po, rowStep),
        ...[...op.get(j), ...op.i32(1), ...op.sub, ...op.set(j)],
      ]),
      ...addTo(i, op.i32(1)),
    ]),
  ];
}

let bytes: Uint8Array | undefined;

function moduleBytes(): Uint8Array {
  bytes ??= assemble([
    {
      name: 'gemm',
      params: new Array(13).fill(I32),
      results: [],
      locals: GEMM_LOCALS,
      body: gemmBody(),
    },
    {
      name: 'transpose',
      params: [I32, I32, I32, I32],
      results: [],
      locals: [I32, I32, I32, I32],
      body: transposeBody(),
    },
  ]);
  return bytes;
}
