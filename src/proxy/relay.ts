// One upstream exchange streamed straight into the client's response through undici's handler API: no response
// Readable, no async iterator, no promise per chunk (measured faster per request than request() + a write loop).
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

export interface Relayed {
  status: number;
  /** False when `accept` declined the response (its body was discarded). */
  written: boolean;
  /** ms from dispatch to the response's headers. */
  headersMs: number;
}

export interface Relay {
  done: Promise<Relayed>;
  /** Cancel the exchange (the client went away): the upstream request is aborted and its connection freed. */
  abort(reason: Error): void;
  /**
   * True once the client has been handed every byte of a response whose length it knows (Content-Length, or none to
   * come), even if the upstream's end has not been read yet: a client that closes then got its whole answer.
   */
  delivered(): boolean;
}

/**
 * Send `opts` upstream; when its response starts, `accept(status, headers)` says whether it goes to `res` (and writes
 * the head). Backpressure from `res` pauses the upstream. Rejects with undici's error, before or after headers.
 */
export function relay(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, res: ServerResponse, accept: (status: number, headers: IncomingHttpHeaders) => boolean): Relay {
  let controller: Dispatcher.DispatchController | null = null;
  let cancelled: Error | null = null;
  let written = false;
  let status = 0;
  // Bytes the client is owed (null: it learns the end only from the end of the message) and bytes handed to it.
  let owed: number | null = null;
  let sent = 0;
  let headersMs = 0;
  const t0 = performance.now();
  let settle!: (value: Relayed) => void;
  let fail!: (err: unknown) => void;
  const done = new Promise<Relayed>((resolve, reject) => ((settle = resolve), (fail = reject)));
  const resume = () => controller?.resume();
  dispatcher.dispatch(opts, {
    onRequestStart(c) {
      controller = c;
      if (cancelled) c.abort(cancelled);
    },
    onResponseStart(_c, statusCode, headers) {
      if (statusCode < 200) return; // 1xx: the final response follows
      status = statusCode;
      headersMs = performance.now() - t0;
      written = accept(statusCode, headers as IncomingHttpHeaders);
      if (written) owed = bodyLength(opts.method, statusCode, headers as IncomingHttpHeaders);
    },
    onResponseData(c, chunk) {
      if (!written) return;
      sent += chunk.length;
      if (!res.write(chunk)) {
        c.pause();
        res.once('drain', resume);
      }
    },
    onResponseEnd() {
      if (written) res.end();
      settle({ status, written, headersMs });
    },
    onResponseError(_c, err) {
      fail(err);
    },
  });
  return {
    done,
    abort(reason) {
      cancelled = reason;
      controller?.abort(reason);
    },
    delivered: () => written && owed !== null && sent >= owed,
  };
}

/** How many body bytes a response announces (RFC 9112 §6.3), or null when only the end of the message says. */
function bodyLength(method: string, status: number, headers: IncomingHttpHeaders): number | null {
  if (method === 'HEAD' || status === 204 || status === 304) return 0;
  const declared = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined || typeof declared !== 'string') return null;
  const length = Number(declared);
  return /^\d+$/.test(declared) && Number.isSafeInteger(length) ? length : null;
}
