// Send the request to the target with undici: bounded, timed, never following redirects.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Writable } from 'node:stream';
import type { buildConnector, Dispatcher } from 'undici';
import { isLoopback } from './addresses.ts';
import { placeToken, type TokenHeader } from './token-header.ts';
import { TOKEN_HEADER_NAMES } from '../options.ts';
import { IdcallError } from '../errors.ts';
import { importForModernNode } from '../runtime.ts';
import { displayProxy } from './proxy-env.ts';
import { describeNetworkError } from './transport.ts';
import { routedConnector, trustWith, type Routing } from './routing.ts';

export interface CallOptions {
  url: URL;
  method: string;
  headers: [string, string][];
  body?: Buffer;
  /** The ID token to send; null sends none (a probe of what the front end answers an anonymous caller). */
  token: string | null;
  headerName: string;
  /** Bound for connecting and for the response headers: a stream that answers at once may then run as long as it likes. */
  timeoutMs: number;
  /** Bound for the whole exchange, body included (curl's --max-time); none when absent. */
  maxTimeMs?: number;
  /** Bytes of body to keep; Infinity keeps all. */
  bodyLimit: number;
  monotonic: () => number;
  signal?: AbortSignal;
  /** Extra CA or TLS settings for tests and private endpoints. */
  connect?: buildConnector.BuildOptions;
  /** --resolve, --connect-to and --cacert: where to connect for the URL's host, and whom to trust there. */
  routing?: Routing;
  /** Send it through this HTTP proxy (core/proxy-env.ts decides). */
  proxy?: string;
  /**
   * Where the whole body goes as it arrives (-o FILE, -o -), opened once the response starts: nothing but the kept
   * excerpt is held in memory. `close`: end the stream when the body is done (a file, not stdout).
   */
  openSink?: () => { stream: Writable; close: boolean };
}

export interface CallResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The start of the body (at most DIAGNOSTIC_BYTES) whatever --body says: what IAP's and ESPv2's answers are read from. */
  head: Buffer;
  bodyBytes: number;
  redirect?: string;
  timings: { connectMs?: number; firstByteMs?: number; totalMs: number };
  /** Where the token went: the header name actually used. */
  tokenHeader: string;
  /** Where the connection went when --connect-to or --resolve moved it. */
  connectedVia?: string;
  /** The sink failed (a full disk, a closed pipe): the body was not all written, the report is still whole. */
  sinkError?: string;
}

const BODY_IDLE_MS = 5 * 60_000;

const KEY_HEADERS = ['www-authenticate', 'server', 'x-cloud-trace-context', 'content-type', 'location', 'content-length', 'via', 'date', 'x-goog-iap-generated-response'];

/** Front ends explain a refusal in a line or two (IAP, ESPv2); this much is always kept to read it. */
const DIAGNOSTIC_BYTES = 4096;

export async function callTarget(options: CallOptions): Promise<CallResult> {
  // A dynamic import, so that on an unsupported Node a load failure is a catchable rejection (importForModernNode).
  const { Agent, ProxyAgent, buildConnector, request } = await importForModernNode(() => import('./undici.ts'), 'Calling a target');
  const started = options.monotonic();
  let connectMs: number | undefined;
  const ca = trustWith(options.routing?.ca);
  let connectedVia: string | undefined;
  const connector = routedConnector(buildConnector, { timeout: options.timeoutMs, ...(ca ? { ca } : {}), ...options.connect }, options.routing, (via) => (connectedVia = via));
  const timedConnector: buildConnector.connector = (opts, callback) => {
    const t0 = options.monotonic();
    connector(opts, (err, socket) => {
      connectMs = Math.round(options.monotonic() - t0);
      callback(err as never, socket as never);
    });
  };
  // --timeout is for connecting and the headers: a body (server-sent events) may pause far longer between chunks.
  // It is still never waited on forever: BODY_IDLE_MS between chunks, or --max-time for the whole exchange.
  const limits = { headersTimeout: options.timeoutMs, bodyTimeout: options.maxTimeMs ?? BODY_IDLE_MS };
  // Through a proxy the connection timed would be the proxy's, so none is reported.
  const agent = options.proxy
    ? new ProxyAgent({ uri: options.proxy, ...limits, ...(options.connect || ca ? { requestTls: { ...options.connect, ...(ca ? { ca } : {}) } } : {}) })
    : new Agent({ connect: timedConnector, ...limits, connections: 1 });
  const headers: Record<string, string> = {};
  for (const [name, value] of options.headers) headers[name.toLowerCase()] = value;
  // A null token is a probe: the same request with no credential, to read what the front end says then.
  const placed = options.token === null ? null : placeToken(headers, options.headerName.toLowerCase() as TokenHeader, options.token);
  const tokenHeader = options.token === null ? 'no header (a probe without a token)' : placed ? (TOKEN_HEADER_NAMES.find((n) => n.toLowerCase() === placed) ?? options.headerName) : `no header: -H already set ${options.headerName}${options.headerName.toLowerCase() === 'authorization' ? ' and X-Serverless-Authorization' : ''}`;
  headers['user-agent'] ??= 'idcall';

  const maxTime = options.maxTimeMs !== undefined ? AbortSignal.timeout(options.maxTimeMs) : undefined;
  const signals = [...(maxTime ? [maxTime] : []), ...(options.signal ? [options.signal] : [])];
  try {
    const res = await request(options.url, {
      method: options.method as Dispatcher.HttpMethod,
      headers,
      body: options.body ?? null,
      dispatcher: agent,
      ...(signals.length ? { signal: AbortSignal.any(signals) } : {}),
      maxRedirections: 0,
    } as Parameters<typeof request>[1]);
    const firstByteMs = Math.round(options.monotonic() - started);
    const chunks: Buffer[] = [];
    const keep = Math.max(options.bodyLimit, DIAGNOSTIC_BYTES);
    let kept = 0;
    let total = 0;
    const sink = options.openSink?.();
    let sinceCollect = 0;
    let sinkError: string | undefined;
    sink?.stream.once('error', (err: NodeJS.ErrnoException) => (sinkError = err.code ?? err.message));
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      total += buf.length;
      if (kept < keep) {
        const slice = buf.subarray(0, Math.min(buf.length, keep - kept));
        chunks.push(slice);
        kept += slice.length;
      }
      // Backpressure from the file or pipe holds the download, so memory stays flat whatever the size.
      if (sink && !sinkError && !sink.stream.write(buf)) await drained(sink.stream);
      if (sink && (sinceCollect += buf.length) >= COLLECT_EVERY_BYTES) {
        sinceCollect = 0;
        collectYoung();
      }
    }
    // A file's write can fail only at its end (a full disk, /dev/full): the end callback is where that shows.
    if (sink?.close && !sinkError) await new Promise<void>((resolve) => sink.stream.end((err?: NodeJS.ErrnoException | null) => ((sinkError ??= err ? (err.code ?? err.message) : undefined), resolve())));
    const picked: Record<string, string> = {};
    for (const name of KEY_HEADERS) {
      const value = res.headers[name];
      if (value !== undefined) picked[name] = Array.isArray(value) ? value.join(', ') : String(value);
    }
    return {
      status: res.statusCode,
      headers: picked,
      ...(() => {
        const kept = Buffer.concat(chunks);
        return { body: kept.subarray(0, options.bodyLimit), head: kept.subarray(0, DIAGNOSTIC_BYTES) };
      })(),
      bodyBytes: total,
      ...(res.statusCode >= 300 && res.statusCode < 400 && picked.location ? { redirect: new URL(picked.location, options.url).toString() } : {}),
      timings: { ...(connectMs !== undefined ? { connectMs } : {}), firstByteMs, totalMs: Math.round(options.monotonic() - started) },
      tokenHeader,
      ...(connectedVia ? { connectedVia } : {}),
      ...(sinkError ? { sinkError } : {}),
    };
  } catch (err) {
    throw targetError(err, options);
  } finally {
    agent.destroy().catch(() => {});
  }
}

// Each socket read is a fresh Buffer outside the JavaScript heap, and V8 frees those only when a collection finds their
// small wrappers dead; a download allocates almost nothing else, so no collection comes until about 64 MB of external
// memory has piled up (measured: 90 MB above start-up for a 300 MB body). A young-generation collection every few MB
// costs well under a millisecond and keeps a download of any size at start-up memory plus a few MB.
const COLLECT_EVERY_BYTES = 1024 * 1024;
let youngCollector: (() => void) | null | undefined;
function collectYoung(): void {
  if (youngCollector === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as (options: { type: 'minor'; execution: 'sync' }) => void;
      youngCollector = () => gc({ type: 'minor', execution: 'sync' });
    } catch {
      youngCollector = null;
    }
  }
  youngCollector?.();
}

/** 'drain' or a failure, whichever comes first: a failed sink must not stall the download. */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('error', done);
    stream.once('close', done);
  });
}

/** undici's codes for an answer that came but cannot be read (llhttp's own HPE_* codes are handled alike). */
const MALFORMED_ANSWERS: Record<string, string> = {
  UND_ERR_HEADERS_OVERFLOW: 'its response headers are over the 16 KB a client reads',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'its response body does not match its Content-Length',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'its response is over the size limit',
};

function targetError(err: unknown, options: CallOptions): IdcallError {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  const host = options.url.host;
  if (options.maxTimeMs !== undefined && (e?.name === 'TimeoutError' || e?.name === 'AbortError')) {
    return new IdcallError('TIMEOUT', `${host} did not finish within --max-time ${options.maxTimeMs} ms.`, `Raise --max-time for a long response (a stream, a large download), or leave it out: --timeout alone bounds only connecting and the response headers.`, { cause: err });
  }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || /TIMEOUT/.test(code)) {
    return new IdcallError('TIMEOUT', `${host} did not answer within ${options.timeoutMs} ms.`, `Raise --timeout if the service is slow to start (cold start), or check that ${host} is reachable from here.`, { cause: err });
  }
  // An https:// URL to a port that speaks plain HTTP: OpenSSL reads "HTTP/1.1 400" as a bad TLS record.
  const text = `${code} ${(e as { message?: string }).message ?? ''} ${(e?.cause as { message?: string } | undefined)?.message ?? ''}`;
  if (options.url.protocol === 'https:' && /WRONG_VERSION_NUMBER|wrong version number|packet length too long|http request/i.test(text)) {
    const plain = new URL(options.url);
    plain.protocol = 'http:';
    return new IdcallError('TLS_ERROR', `${host} answers plain HTTP, not TLS: the URL says https:// but the port speaks http.`, `Use ${plain.toString()}${isLoopback(options.url.hostname) ? '' : ' (plain http to a host that is not loopback also needs --allow-insecure)'}.`, { cause: err });
  }
  if (/CERT|SSL|TLS|ERR_TLS|UNABLE_TO_VERIFY|SELF_SIGNED|HOSTNAME|ALTNAME/i.test(code)) {
    return new IdcallError('TLS_ERROR', `TLS with ${host} failed: ${code}.`, 'A TLS-intercepting proxy or a wrong host name is the usual cause; set NODE_EXTRA_CA_CERTS to your proxy\'s CA, or check the URL.', { cause: err });
  }
  // It was reached and answered, but not in HTTP anyone can read: pointing at DNS, VPN or firewalls would mislead.
  const unparsable = /^HPE_/.test(code) || e?.name === 'HTTPParserError';
  const malformed = MALFORMED_ANSWERS[code] ?? (unparsable ? `its response is not valid HTTP/1.1 (${code || /\(([^)]+)\)$/.exec((e as { message?: string }).message ?? '')?.[1] || 'unparsable'})` : undefined);
  if (malformed) {
    return new IdcallError('TARGET_UNREACHABLE', `${host} answered, but ${malformed}.`, `The service or a proxy in front of it sends a broken response: check its logs${options.proxy ? `, or try without the proxy (${displayProxy(options.proxy)})` : ''}.`, { cause: err });
  }
  if (options.proxy) {
    const proxy = displayProxy(options.proxy);
    return new IdcallError('TARGET_UNREACHABLE', `${host} could not be reached through the proxy ${proxy}: ${describeNetworkError(err)}.`, `Check the proxy (HTTPS_PROXY/HTTP_PROXY) accepts connections and allows ${host}, or add ${options.url.hostname} to NO_PROXY to connect directly.`, { cause: err });
  }
  return new IdcallError('TARGET_UNREACHABLE', `${host} could not be reached: ${describeNetworkError(err)}.`, `Check the URL and that ${host} resolves and accepts connections from here (VPN, firewall, ingress settings).`, { cause: err });
}
