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
import {
  addTo,
  assemble,
  enableRelaxedSimd,
  F32,
  I32,
  op,
  perBackend,
  V128,
  whileLoop,
} from './wasm-asm.js';

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
    flags: number,
  ): void;
  /** out[j·rows + i] = x[i·cols + j] (float32, byte offsets). */
  transpose(out: number, x: number, rows: number, cols: number): void;
  /**
   * One NHWC image x [H,W,C] to its patch matrix col [OH·OW, fh·fw·C] for a stride-1, undilated
   * convolution padded by (pt, pl) at the top and left: row oh·OW + ow holds the window at
   * (oh - pt, ow - pl), zeros where it leaves the image. Every window must overlap the image.
   */
  im2col(x: number, col: number, ...geometry: ConvGeometry): void;
  /** The adjoint of im2col: adds each row's window back into dx [H,W,C] (which it does not clear). */
  col2im(dx: number, col: number, ...geometry: ConvGeometry): void;
}

/** H, W, C, OH, OW, fh, fw, pt, pl of a stride-1 convolution of one image. */
export type ConvGeometry = [
  H: number,
  W: number,
  C: number,
  OH: number,
  OW: number,
  fh: number,
  fw: number,
  pt: number,
  pl: number,
];

/** The kernels bound to `backend`'s memory, or undefined when that is not a wasm backend with SIMD. */
export const gemmKernels = perBackend<GemmKernels>(() => moduleBytes());

/**
 * The same kernels with the products' multiply-adds as wasm relaxed-SIMD `f32x4.relaxed_madd`,
 * which V8 compiles to one FMA instruction where the CPU has FMA3 (each product is then not rounded
 * before its sum: equal within float32 rounding, and more exact). Measured on this machine's convs
 * and GEMMs: 15-25% less CPU. Node 20's V8 has relaxed SIMD behind a flag, which
 * `enableRelaxedSimd` sets; undefined where the engine still rejects the module.
 */
export const fmaGemmKernels = perBackend<GemmKernels>(() => {
  enableRelaxedSimd();
  return moduleBytes(true);
});

// gemm's params and locals, by index.
const [C, A, B, BIAS, M, N, K, SAM, SAK, SBK, SCM, SCN, FLAGS] = [
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
function tile(rows: number, kind: Kind, fma: boolean): number[] {
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
      // acc += a·b: one multiply-add (relaxed madd: fused where the CPU has FMA), or a multiply
      // rounded to float32 and an add.
      const madd = (v: number, b: number) =>
        fma
          ? [...op.get(b), ...op.get(acc(r, v)), ...op.f32x4RelaxedMadd]
          : [...op.get(acc(r, v)), ...op.get(AV), ...op.get(b), ...op.f32x4Mul, ...op.f32x4Add];
      step.push(...op.get(PA[r]!), ...op.v128Load32Splat(), ...op.set(AV));
      step.push(...(fma ? op.get(AV) : []), ...madd(0, B0), ...op.set(acc(r, 0)));
      if (nv === 2) step.push(...(fma ? op.get(AV) : []), ...madd(1, B1), ...op.set(acc(r, 1)));
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

/** Flags of gemm: ReLU after the bias; add the product to C's values (accumulating chunks). */
export const RELU = 1;
export const ACCUMULATE = 2;

const flag = (f: number) => [...op.get(FLAGS), ...op.i32(f), ...op.and];

/** Accumulate, bias, ReLU and the store of one accumulator (vector `v` of its row). */
function epilogue(kind: Kind, acc: number, v: number): number[] {
  const biasAt = [...op.get(BIAS), ...op.get(N0), ...op.i32(2), ...op.shl, ...op.add];
  if (kind === 's') {
    return [
      ...flag(ACCUMULATE),
      ...op.if,
      ...[...op.get(acc), ...op.get(PC), ...op.f32Load(), ...op.f32Add, ...op.set(acc)],
      ...op.end,
      ...op.get(BIAS),
      ...op.if,
      ...[...op.get(acc), ...biasAt, ...op.f32Load(), ...op.f32Add, ...op.set(acc)],
      ...op.end,
      ...flag(RELU),
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
  const laneAt = (l: number) => [
    ...op.get(PC),
    ...op.i32(4 * v + l),
    ...op.get(SCN),
    ...op.mul,
    ...op.add,
  ];
  const unitStride = [...op.get(SCN), ...op.i32(4), ...op.ne, ...op.eqz];
  return [
    ...flag(ACCUMULATE),
    ...op.if,
    ...op.get(acc),
    ...unitStride,
    ...op.if,
    ...[...op.get(PC), ...op.v128Load(16 * v), ...op.set(AV)],
    ...op.else,
    ...[...op.v128Zero, ...op.set(AV)],
    ...[0, 1, 2, 3].flatMap((l) => [
      ...op.get(AV),
      ...laneAt(l),
      ...op.f32Load(),
      ...op.f32x4ReplaceLane(l),
      ...op.set(AV),
    ]),
    ...op.end,
    ...[...op.get(AV), ...op.f32x4Add, ...op.set(acc)],
    ...op.end,
    ...op.get(BIAS),
    ...op.if,
    ...[...op.get(acc), ...biasAt, ...op.v128Load(16 * v), ...op.f32x4Add, ...op.set(acc)],
    ...op.end,
    ...flag(RELU),
    ...op.if,
    // pmax(x, 0) = x < 0 ? 0 : x
    ...[...op.get(acc), ...op.v128Zero, ...op.f32x4Pmax, ...op.set(acc)],
    ...op.end,
    // Unit column stride: one vector store; else four lane stores.
    ...unitStride,
    ...op.if,
    ...[...op.get(PC), ...op.get(acc), ...op.v128Store(16 * v)],
    ...op.else,
    ...[0, 1, 2, 3].flatMap((l) => [
      ...laneAt(l),
      ...op.get(acc),
      ...op.f32x4Lane(l),
      ...op.f32Store(),
    ]),
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
function columnBlock(kind: Kind, fma: boolean): number[] {
  return [
    ...op.i32(0),
    ...op.set(M0),
    ...whileLoop(fits(M0, 4, M), [...tile(4, kind, fma), ...addTo(M0, op.i32(4))]),
    ...whileLoop(fits(M0, 1, M), [...tile(1, kind, fma), ...addTo(M0, op.i32(1))]),
  ];
}

function gemmBody(fma: boolean): number[] {
  return [
    ...op.i32(0),
    ...op.set(N0),
    ...whileLoop(fits(N0, 8, N), [...columnBlock('v2', fma), ...addTo(N0, op.i32(8))]),
    ...fits(N0, 4, N),
    ...op.if,
    ...[...columnBlock('v1', fma), ...addTo(N0, op.i32(4))],
    ...op.end,
    ...whileLoop(fits(N0, 1, N), [...columnBlock('s', fma), ...addTo(N0, op.i32(1))]),
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

/**
 * im2col (`add` false) or col2im (`add` true): params image 0, col 1, H 2, W 3, C 4, OH 5, OW 6,
 * fh 7, fw 8, pt 9, pl 10. For each window row (oh, ow, i), the image row segment it covers is
 * fw·C contiguous floats (NHWC, stride 1), clipped at the image's left and right edges: im2col
 * copies it (memory.copy) and zero-fills the clipped parts; col2im adds it back, four lanes at a
 * time.
 */
function patchBody(add: boolean): number[] {
  const [img, col, H, W, Cc, OH, OW, fh, fw, pt, pl] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [oh, ow, i, ih, iw0, jl, jr, dst, cb, seg, src, len, e] = [
    11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
  ];
  const mulTo = (out: number, a: number[], b: number[]) => [...a, ...b, ...op.mul, ...op.set(out)];
  const zero = (at: number[], bytes: number[]) => [...at, ...op.i32(0), ...bytes, ...op.memoryFill];
  // src = image + ((ih·W + iw0 + jl)·C)·4 ; dst' = dst + jl·C·4 ; len = (fw - jl - jr)·C·4
  const segment = [
    ...op.get(img),
    ...[
      ...op.get(ih),
      ...op.get(W),
      ...op.mul,
      ...op.get(iw0),
      ...op.add,
      ...op.get(jl),
      ...op.add,
    ],
    ...[...op.get(cb), ...op.mul, ...op.add, ...op.set(src)],
    ...[
      ...op.get(fw),
      ...op.get(jl),
      ...op.sub,
      ...op.get(jr),
      ...op.sub,
      ...op.get(cb),
      ...op.mul,
    ],
    ...op.set(len),
  ];
  const dstJl = [...op.get(dst), ...op.get(jl), ...op.get(cb), ...op.mul, ...op.add];
  // col[e] = image[src + e], col pointing at the segment's clipped start (dst'): a loop, not
  // memory.copy, whose per-call cost dominates for the first layers' 3-15 float segments.
  const copyOver = (step: number, load: number[], store: number[]) =>
    whileLoop(fits(e, step, len), [
      ...[...op.get(col), ...op.get(e), ...op.add],
      ...[...op.get(src), ...op.get(e), ...op.add, ...load],
      ...store,
      ...addTo(e, op.i32(step)),
    ]);
  const copy = [
    ...[...op.get(jl), ...op.if, ...zero(op.get(dst), [...op.get(jl), ...op.get(cb), ...op.mul])],
    ...op.end,
    ...[...dstJl, ...op.set(col), ...op.i32(0), ...op.set(e)],
    ...copyOver(16, op.v128Load(), op.v128Store()),
    ...copyOver(4, op.f32Load(), op.f32Store()),
    ...op.get(jr),
    ...op.if,
    ...zero(
      [
        ...op.get(dst),
        ...op.get(fw),
        ...op.get(jr),
        ...op.sub,
        ...op.get(cb),
        ...op.mul,
        ...op.add,
      ],
      [...op.get(jr), ...op.get(cb), ...op.mul],
    ),
    ...op.end,
  ];
  // image[src + e] += col[e], col pointing at the segment's clipped start (dst').
  const addBack = (step: number, load: number[], store: number[], sum: number[]) =>
    whileLoop(fits(e, step, len), [
      ...[...op.get(src), ...op.get(e), ...op.add],
      ...[...op.get(src), ...op.get(e), ...op.add, ...load],
      ...[...op.get(col), ...op.get(e), ...op.add, ...load],
      ...sum,
      ...store,
      ...addTo(e, op.i32(step)),
    ]);
  const accumulate = [
    // col (only read once, for dst's start) becomes the cursor of this segment's clipped start.
    ...[...dstJl, ...op.set(col)],
    ...[...op.i32(0), ...op.set(e)],
    ...addBack(16, op.v128Load(), op.v128Store(), op.f32x4Add),
    ...addBack(4, op.f32Load(), op.f32Store(), op.f32Add),
  ];
  const outside = [
    ...[...op.get(ih), ...op.i32(0), ...op.ltS],
    ...[...op.get(ih), ...op.get(H), ...op.geS, ...op.or],
  ];
  const windowRow = [
    ...[...op.get(oh), ...op.get(i), ...op.add, ...op.get(pt), ...op.sub, ...op.set(ih)],
    ...outside,
    ...op.if,
    ...(add ? [] : zero(op.get(dst), op.get(seg))),
    ...op.else,
    ...segment,
    ...(add ? accumulate : copy),
    ...op.end,
    ...addTo(dst, op.get(seg)),
    ...addTo(i, op.i32(1)),
  ];
  const window = [
    ...[...op.get(ow), ...op.get(pl), ...op.sub, ...op.set(iw0)],
    // jl = max(0, -iw0); jr = max(0, iw0 + fw - W)
    ...[...op.i32(0), ...op.get(iw0), ...op.sub, ...op.i32(0), ...op.get(iw0), ...op.i32(0)],
    ...[...op.ltS, ...op.select, ...op.set(jl)],
    ...[...op.get(iw0), ...op.get(fw), ...op.add, ...op.get(W), ...op.sub, ...op.set(jr)],
    ...[...op.get(jr), ...op.i32(0), ...op.get(jr), ...op.i32(0), ...op.geS, ...op.select],
    ...op.set(jr),
    ...[...op.i32(0), ...op.set(i)],
    ...whileLoop(fits(i, 1, fh), windowRow),
    ...addTo(ow, op.i32(1)),
  ];
  return [
    ...mulTo(cb, op.get(Cc), op.i32(4)),
    ...mulTo(seg, op.get(fw), op.get(cb)),
    ...[...op.get(col), ...op.set(dst)],
    ...[...op.i32(0), ...op.set(oh)],
    ...whileLoop(fits(oh, 1, OH), [
      ...[...op.i32(0), ...op.set(ow)],
      ...whileLoop(fits(ow, 1, OW), window),
      ...addTo(oh, op.i32(1)),
    ]),
  ];
}

const bytes: Partial<Record<'plain' | 'fma', Uint8Array>> = {};

function moduleBytes(fma = false): Uint8Array {
  bytes[fma ? 'fma' : 'plain'] ??= assemble([
    {
      name: 'gemm',
      params: new Array(13).fill(I32),
      results: [],
      locals: GEMM_LOCALS,
      body: gemmBody(fma),
    },
    {
      name: 'transpose',
      params: [I32, I32, I32, I32],
      results: [],
      locals: [I32, I32, I32, I32],
      body: transposeBody(),
    },
    ...(['im2col', 'col2im'] as const).map((name) => ({
      name,
      params: new Array<typeof I32>(11).fill(I32),
      results: [],
      locals: new Array<typeof I32>(13).fill(I32),
      body: patchBody(name === 'col2im'),
    })),
  ]);
  return bytes[fma ? 'fma' : 'plain']!;
}
