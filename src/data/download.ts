/**
 * Downloads for data-set fetchers: an HTTP GET into memory with a deadline for the response to
 * start, a stall deadline while the body streams, cancellation, and byte-level progress callbacks.
 *
 *   const bytes = await download(url, { connectTimeoutMs: 10_000, onProgress: (p) => bar(p) });
 */
import { DataError } from '../errors.js';

export interface FetchProgress {
  /** What is happening, e.g. "download cifar-10-binary.tar.gz" or "decode data_batch_2.png". */
  readonly phase: string;
  readonly done: number;
  /** Undefined when the total is unknown (then `done` still grows). */
  readonly total?: number;
  /** Unit of done/total. */
  readonly unit: 'bytes' | 'items';
}

export type ProgressFn = (p: FetchProgress) => void;

export interface DownloadOptions {
  /** Time allowed until the response headers arrive; default 10 s. */
  connectTimeoutMs?: number;
  /** Longest pause allowed between two body chunks; default 30 s. */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** Label for progress and errors; default the URL's last path segment. */
  label?: string;
}

export async function download(url: string, opts: DownloadOptions = {}): Promise<Uint8Array> {
  const label = opts.label ?? (new URL(url).pathname.split('/').pop() || url);
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let timer = setTimeout(
    () => ctl.abort(new Error('no response')),
    opts.connectTimeoutMs ?? 10_000,
  );
  try {
    const res = await fetch(url, { signal: ctl.signal, redirect: 'follow' });
    if (!res.ok || !res.body) throw new DataError(`${url}: HTTP ${res.status} ${res.statusText}`);
    const totalHeader = Number(res.headers.get('content-length'));
    const total = Number.isFinite(totalHeader) && totalHeader > 0 ? totalHeader : undefined;
    const chunks: Uint8Array[] = [];
    let done = 0;
    const stall = opts.stallTimeoutMs ?? 30_000;
    const reader = res.body.getReader();
    for (;;) {
      clearTimeout(timer);
      timer = setTimeout(() => ctl.abort(new Error(`stalled for ${stall} ms`)), stall);
      const { value, done: end } = await reader.read();
      if (end) break;
      chunks.push(value);
      done += value.length;
      opts.onProgress?.({
        phase: `download ${label}`,
        done,
        ...(total ? { total } : {}),
        unit: 'bytes',
      });
    }
    if (total !== undefined && done !== total) {
      throw new DataError(`${url}: received ${done} of ${total} bytes`);
    }
    return Buffer.concat(chunks);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const reason = ctl.signal.aborted
      ? String((ctl.signal.reason as Error)?.message ?? ctl.signal.reason)
      : (e as Error).message;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new DataError(`${url}: download failed (${cause?.code ?? cause?.message ?? reason})`);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
