// Where a token may travel once a server answers with a redirect: only to the origin it was minted for.
// fetch strips only Authorization on a cross-origin hop, so a token in X-Serverless-Authorization (or in
// Authorization beside the application's own) would follow a 302 anywhere. idcall follows redirects itself.
import type { TokenHeader } from '../core/net/token-header.ts';

type FetchFn = typeof globalThis.fetch;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// fetch's own limit (WHATWG fetch, "HTTP-redirect fetch").
const MAX_REDIRECTS = 20;
const CONTENT_HEADERS = ['content-encoding', 'content-language', 'content-location', 'content-type', 'content-length'];
// What fetch itself drops when a redirect changes origin.
const CROSS_ORIGIN_DROPPED = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * Send `request` with the token in `header`, following redirects the way fetch would, except that the token is
 * attached only to hops whose origin is `home` (the origin the token was minted for).
 */
export async function fetchKeepingTokenHome(base: FetchFn, request: Request, home: string, place: (headers: Headers) => TokenHeader | null): Promise<Response> {
  // With redirect 'manual' or 'error' fetch never follows, so nothing can carry the token elsewhere.
  if (request.redirect !== 'follow') return base(withToken(request, request.headers, place));
  let current = request;
  let appHeaders = new Headers(request.headers);
  for (let hops = 0; ; hops++) {
    // A body must survive to be replayed on 307/308: keep a copy of the stream before it is sent.
    const spare = current.body ? current.clone() : current;
    const url = new URL(current.url);
    const outgoing = url.origin === home ? withToken(current, appHeaders, place) : new Request(current, { headers: appHeaders, redirect: 'manual' });
    const response = await base(outgoing);
    const location = response.headers.get('location');
    if (!REDIRECTS.has(response.status) || location === null) return hops ? markRedirected(response) : response;
    if (hops >= MAX_REDIRECTS) throw new TypeError('fetch failed', { cause: new Error('redirect count exceeded') });
    let next: URL;
    try {
      next = new URL(location, url);
    } catch (err) {
      throw new TypeError('fetch failed', { cause: err });
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new TypeError('fetch failed', { cause: new Error(`redirect to ${next.protocol} is not followed`) });
    await response.body?.cancel().catch(() => {});

    let method = spare.method;
    let body: ReadableStream<Uint8Array> | null = spare.body;
    appHeaders = new Headers(appHeaders);
    if (((response.status === 301 || response.status === 302) && method === 'POST') || (response.status === 303 && method !== 'GET' && method !== 'HEAD')) {
      method = 'GET';
      body = null;
      for (const name of CONTENT_HEADERS) appHeaders.delete(name);
    }
    if (next.origin !== url.origin) for (const name of CROSS_ORIGIN_DROPPED) appHeaders.delete(name);
    current = new Request(next, { method, headers: appHeaders, body, redirect: 'manual', signal: request.signal, ...(body ? { duplex: 'half' } : {}) } as RequestInit);
  }
}

function withToken(request: Request, headers: Headers, place: (headers: Headers) => TokenHeader | null): Request {
  const copy = new Headers(headers);
  place(copy);
  return new Request(request, { headers: copy, redirect: request.redirect === 'follow' ? 'manual' : request.redirect });
}

function markRedirected(response: Response): Response {
  Object.defineProperty(response, 'redirected', { value: true });
  return response;
}
