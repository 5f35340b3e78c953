// google-auth-library builds, signs and parses each protocol exchange; it hands the bytes to a `transporter`
// (gaxios by default). idcall passes this one instead: the request goes through the recording client, so it is
// routed, bounded, retried and reported like every other exchange, and gaxios' fetch (and the ≈25 ms of
// Node's bundled undici it loads) never starts.
import type { HeaderReader, HttpClient } from '../net/http.ts';

/** The part of gaxios' request options the library's clients use. */
interface TransportRequest {
  url?: string | URL;
  method?: string;
  headers?: Headers | Record<string, string>;
  data?: unknown;
  body?: unknown;
  params?: Record<string, unknown>;
  responseType?: string;
}

interface TransportResponse {
  config: TransportRequest;
  data: unknown;
  status: number;
  statusText: string;
  headers: HeaderReader;
  request: { responseURL: string };
}

/** An error shaped like gaxios' own, so the library's handlers (and classify.ts) read the response from it. */
class TransportError extends Error {
  readonly response: TransportResponse;
  readonly status: number;
  readonly code: string;
  readonly config: TransportRequest;
  constructor(response: TransportResponse) {
    super(`Request failed with status code ${response.status}`);
    this.name = 'GaxiosError';
    this.response = response;
    this.status = response.status;
    this.code = String(response.status);
    this.config = response.config;
  }
}

export function libraryTransporter(client: HttpClient) {
  return {
    defaults: {},
    // The library registers logging and user-agent interceptors; they have nothing to do here.
    interceptors: { request: { add() {} }, response: { add() {} } },
    async request(config: TransportRequest): Promise<TransportResponse> {
      const url = new URL(String(config.url));
      for (const [name, value] of Object.entries(config.params ?? {})) if (value !== undefined) url.searchParams.append(name, String(value));
      const headers = plainHeaders(config.headers);
      const payload = config.data ?? config.body;
      let body: string | undefined;
      if (payload instanceof URLSearchParams) {
        body = payload.toString();
        headers['content-type'] ??= 'application/x-www-form-urlencoded';
      } else if (typeof payload === 'string') {
        body = payload;
      } else if (payload !== undefined && payload !== null) {
        body = JSON.stringify(payload);
        headers['content-type'] ??= 'application/json';
      }
      const res = await client(url.toString(), { method: config.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) });
      const text = res.text();
      let data: unknown = text;
      if (config.responseType !== 'text') {
        try {
          data = JSON.parse(text);
        } catch {
          // not JSON: the library sees the text, as gaxios would give it
        }
      }
      const response: TransportResponse = { config, data, status: res.status, statusText: '', headers: res.headers, request: { responseURL: url.toString() } };
      if (!res.ok) throw new TransportError(response);
      return response;
    },
  };
}

function plainHeaders(headers: TransportRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  if (typeof (headers as Headers).forEach === 'function') {
    (headers as Headers).forEach((value, name) => (out[name.toLowerCase()] = value));
    return out;
  }
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name.toLowerCase()] = String(value);
  return out;
}
