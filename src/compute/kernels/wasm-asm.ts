/**
 * A minimal WebAssembly assembler for the small SIMD modules of ./simd.ts and ./gemm.ts: just the
 * opcodes they use, LEB128 encoding, and a module of functions that imports the wasm backend's
 * own `WebAssembly.Memory` (so kernels work on tensors where they lie, by byte offset: no copy in
 * or out).
 *
 *   const bytes = assemble([{ name: 'axpy', params: [I32, I32, I32, F32, I32], results: [],
 *                             locals: [I32, I32, V128], body }]);
 *   const exports = instantiateOn(backend, bytes);   // undefined: no wasm memory, or no SIMD
 */
import { setFlagsFromString } from 'node:v8';

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

const simd = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];

/** Opcodes; memory accesses take a byte offset immediate (default 0). */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (d: number) => [0x0c, d],
  brIf: (d: number) => [0x0d, d],
  select: [0x1b],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  f32: (v: number) => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)],
  eqz: [0x45],
  ne: [0x47],
  ltS: [0x48],
  geS: [0x4e],
  gtU: [0x4b],
  geU: [0x4f],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  and: [0x71],
  or: [0x72],
  shl: [0x74],
  f32Lt: [0x5d],
  f32Gt: [0x5e],
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)],
  f64Load: (offset = 0) => [0x2b, 3, ...uleb(offset)],
  f64Store: (offset = 0) => [0x39, 3, ...uleb(offset)],
  f64Add: [0xa0],
  f64PromoteF32: [0xbb],
  f32Store: (offset = 0) => [0x38, 2, ...uleb(offset)],
  f32Abs: [0x8b],
  f32Add: [0x92],
  f32Mul: [0x94],
  /** memory.copy (dst, src, bytes) and memory.fill (dst, byte value, bytes). */
  memoryCopy: [0xfc, 0x0a, 0x00, 0x00],
  memoryFill: [0xfc, 0x0b, 0x00],
  v128Load: (offset = 0) => simd(0x00, 4, ...uleb(offset)),
  v128Load32Splat: (offset = 0) => simd(0x09, 2, ...uleb(offset)),
  v128Store: (offset = 0) => simd(0x0b, 4, ...uleb(offset)),
  v128Load64Zero: (offset = 0) => simd(0x5d, 3, ...uleb(offset)),
  f64x2PromoteLow: simd(0x5f),
  f64x2Add: simd(0xf0),
  v128Zero: simd(0x0c, ...new Array<number>(16).fill(0)),
  f32x4Splat: simd(0x13),
  f32x4Lane: (l: number) => simd(0x1f, l),
  f32x4ReplaceLane: (l: number) => simd(0x20, l),
  f32x4Gt: simd(0x44),
  v128And: simd(0x4e),
  v128AndNot: simd(0x4f),
  v128Or: simd(0x50),
  v128Bitselect: simd(0x52),
  f32x4Abs: simd(0xe0),
  f32x4Add: simd(0xe4),
  f32x4Mul: simd(0xe6),
  f32x4Pmax: simd(0xeb),
  /** relaxed SIMD: a·b + c, fused or not (the engine's choice, fixed per machine). */
  f32x4RelaxedMadd: simd(0x105),
};

export function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

export function sleb(v: number): number[] {
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

/** `while (cond) { body }`: `cond` leaves an i32 on the stack (nonzero: go on). */
export function whileLoop(cond: number[], body: number[]): number[] {
  return [
    ...op.block,
    ...op.loop,
    ...cond,
    ...op.eqz,
    ...op.brIf(1),
    ...body,
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

/** `local += step` (i32; step a local or a constant code sequence). */
export function addTo(local: number, step: number[]): number[] {
  return [...op.get(local), ...step, ...op.add, ...op.set(local)];
}

export interface FuncDef {
  name: string;
  params: ValType[];
  results: ValType[];
  /** Types of the locals after the params (their indices continue the params'). */
  locals: ValType[];
  /** The code, without the final `end`. */
  body: number[];
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

/** A module of `funcs` (exported by name) that imports `env.memory`. */
export function assemble(funcs: readonly FuncDef[]): Uint8Array {
  const types = vec(
    funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]),
  );
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]]);
  const decl = vec(funcs.map((_, k) => uleb(k)));
  const exports = vec(funcs.map((f, k) => [...name(f.name), 0x00, ...uleb(k)]));
  const code = vec(
    funcs.map((f) => {
      const locals = vec(f.locals.map((t) => [1, t]));
      const body = [...locals, ...f.body, ...op.end];
      return [...uleb(body.length), ...body];
    }),
  );
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, types),
    ...section(2, imports),
    ...section(3, decl),
    ...section(7, exports),
    ...section(10, code),
  ]);
}

/**
 * Turns on V8's relaxed-SIMD wasm feature (standard wasm, on by default from V8 11.4; Node 20's
 * V8 11.3 has it behind --experimental-wasm-relaxed-simd). Wasm features are read when a module is
 * compiled, so setting the flag at run time is enough. Returns whether a relaxed-SIMD module now
 * validates.
 */
export function enableRelaxedSimd(): boolean {
  // (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 relaxed_madd)
  const probe = Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...[0x01, 0x08, 0x01, 0x60, 0x03, V128, V128, V128, 0x01, V128],
    ...[0x03, 0x02, 0x01, 0x00],
    ...[0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02],
    ...[...op.f32x4RelaxedMadd, ...op.end],
  ]);
  const validate = (WA as unknown as { validate(b: Uint8Array): boolean }).validate;
  if (!validate(probe)) setFlagsFromString('--experimental-wasm-relaxed-simd');
  return validate(probe);
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

/**
 * Instantiates `bytes` against `backend`'s memory: its exports, or undefined when the backend has
 * no wasm memory or the engine rejects the module (no wasm SIMD).
 */
export function instantiateOn<T>(backend: object, bytes: Uint8Array): T | undefined {
  const memory = (backend as WasmModuleHolder).wasm?.asm?.memory;
  if (!(memory instanceof WA.Memory)) return undefined;
  try {
    const mod = new WA.Module(bytes);
    return new WA.Instance(mod, { env: { memory } }).exports as T;
  } catch {
    return undefined;
  }
}

/**
 * `instantiateOn` once per backend: the returned function gives `backend`'s instance of the module
 * `bytes()` builds (built on first use), or undefined when it cannot be instantiated there.
 */
export function perBackend<T>(bytes: () => Uint8Array): (backend: object) => T | undefined {
  const cache = new WeakMap<object, T | null>();
  return (backend) => {
    let k = cache.get(backend);
    if (k === undefined) {
      k = instantiateOn<T>(backend, bytes()) ?? null;
      cache.set(backend, k);
    }
    return k ?? undefined;
  };
}
