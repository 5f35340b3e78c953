// Every option's default, and the one resolution of flags + IDCALL_* environment + defaults into the complete, typed
// options each command's core takes. The CLI (from yargs' argv) and the library (from its option objects) both come
// through here, so an option means the same and defaults the same everywhere; below this module no option is optional.
import { usageError } from './errors.ts';
import { GOOGLE_CERTS_URL } from './endpoints.ts';
import type { Env } from './context.ts';
import type { Endpoints } from './endpoints.ts';
import { TARGET_KINDS, type TargetKind } from './target-kind.ts';
import { parseConnectTo, parseResolve, type ConnectTo, type Resolve } from './net/routing.ts';

/** The defaults, written once; docs/commands.md and every --help text are generated from or checked against these. */
export const DEFAULTS = {
  source: 'adc',
  method: 'GET',
  /** The method when a body is sent and none is named (curl's rule). */
  methodWithBody: 'POST',
  headerName: 'Authorization',
  timeoutMs: 30_000,
  bodyExcerptBytes: 200,
  metadataTimeoutMs: 1000,
  authTimeoutMs: 10_000,
  upstreamTimeoutMs: 60_000,
  shutdownTimeoutMs: 10_000,
  reverseListen: '127.0.0.1:8080',
  forwardListen: '127.0.0.1:8000',
  logFormat: 'text',
  certsUrl: GOOGLE_CERTS_URL,
  includeEmail: true,
  metadataFormat: 'full',
  /** Longest a duration flag may be, except --max-time. */
  maxDurationMs: 600_000,
  maxTimeLimitMs: 24 * 3600_000,
} as const;

/** A header name (RFC 9110 token): Authorization, X-Serverless-Authorization, Proxy-Authorization (IAP) or any other. */
export type TokenHeaderName = string;
/** The spellings idcall knows and canonicalises; any other valid header name is used as given. */
export const TOKEN_HEADER_NAMES = ['Authorization', 'X-Serverless-Authorization', 'Proxy-Authorization'] as const;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Flag values by flag name (kebab-case), as yargs parses them or as the library maps its options onto them. */
export type Raw = Record<string, unknown>;

/** What the parser knows of a command's options: which are boolean, which are lists, and every name. */
export interface OptionTable {
  boolean: string[];
  array: string[];
  key: Record<string, unknown>;
}

const envName = (flag: string): string => `IDCALL_${flag.toUpperCase().replace(/-/g, '_')}`;

const TRUE = /^(1|true|yes)$/i;
const BOOLEAN = /^(1|0|true|false|yes|no)$/i;

/** IDCALL_<NAME> as a boolean: undefined when unset or empty; a USAGE_ERROR when it is not a boolean. */
export function envBoolean(env: Env, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!BOOLEAN.test(raw)) throw usageError(`${name}=${JSON.stringify(raw)} is not a boolean.`, `Set ${name} to true or false.`);
  return TRUE.test(raw);
}

// curl-syntax lists whose entries may hold commas (--resolve's address list): IDCALL_* separates them by spaces.
const SPACE_SEPARATED = ['resolve', 'connect-to'];

/** Configuration order: the flag, then IDCALL_<FLAG_NAME> from the environment, then (later) the default. */
export function withEnvironment(raw: Raw, env: Env, known: OptionTable): Raw {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('IDCALL_') || value === undefined || value === '') continue;
    const key = name.slice('IDCALL_'.length).toLowerCase().replace(/_/g, '-');
    if (!(key in known.key) || raw[key] !== undefined) continue;
    if (known.boolean.includes(key)) raw[key] = envBoolean(env, name);
    else if (SPACE_SEPARATED.includes(key)) raw[key] = value.split(/\s+/).filter(Boolean);
    else raw[key] = known.array.includes(key) ? value.split(',').map((v) => v.trim()) : value;
  }
  return raw;
}

/** A flag's value as text, or undefined when neither the flag nor its IDCALL_* variable was given. */
export function setting(raw: Raw, name: string): string | undefined {
  const value = raw[name];
  return value === undefined || value === null ? undefined : String(value);
}

/** Durations: "1500", "1500ms", "2s", "1m". */
function parseDuration(value: string | undefined, fallback: number, flag: string, maxMs: number = DEFAULTS.maxDurationMs): number {
  if (value === undefined) return fallback;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
  if (!match) throw usageError(`--${flag} ${JSON.stringify(value)} is not a duration.`, `Give milliseconds (1500), seconds (2s) or minutes (1m) to --${flag} (or ${envName(flag)}).`);
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : match[2] === 'm' ? 60_000 : 1);
  if (ms <= 0 || ms > maxMs) throw usageError(`--${flag} ${value} is out of range.`, `Give --${flag} between 1 ms and ${maxMs / 1000} s.`);
  return Math.round(ms);
}

/** Header names are case-insensitive (RFC 9110 §5.1): `--header-name x-serverless-authorization` is the same choice. */
export function canonicalHeaderName(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  return TOKEN_HEADER_NAMES.find((name) => name.toLowerCase() === value.trim().toLowerCase()) ?? value;
}

// Headers that carry something else, where a token would break the request or leak through caches and logs.
const NOT_FOR_TOKENS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'cookie', 'set-cookie', 'te', 'upgrade', 'keep-alive', 'via', 'forwarded', 'user-agent']);

function headerName(raw: Raw): TokenHeaderName {
  const value = String(canonicalHeaderName(setting(raw, 'header-name') ?? DEFAULTS.headerName)).trim();
  if (!HEADER_NAME.test(value) || NOT_FOR_TOKENS.has(value.toLowerCase())) {
    throw usageError(`--header-name ${JSON.stringify(value)} is not a header idcall can put the token in.`, `Use ${TOKEN_HEADER_NAMES.join(', ')}, or another header your front end reads (letters, digits and -).`);
  }
  return value;
}

/** --target-kind, when given. */
function targetKind(raw: Raw): TargetKind | undefined {
  const value = setting(raw, 'target-kind');
  if (value === undefined) return undefined;
  const kind = value.trim().toLowerCase().replace(/-/g, '_');
  if (!(TARGET_KINDS as readonly string[]).includes(kind)) throw usageError(`--target-kind ${JSON.stringify(value)} is not a target kind.`, `Use one of ${TARGET_KINDS.join(', ')}.`);
  return kind as TargetKind;
}

function endpointUrl(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
    return value;
  } catch {
    throw usageError(`--${flag} (or ${envName(flag)}) ${JSON.stringify(value)} is not an http(s) URL.`, `Pass a full URL to --${flag} (or ${envName(flag)}).`);
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** Where the credential comes from and how it is turned into a token: shared by every command that mints. */
export interface SourceOptions {
  credentials?: string;
  impersonate?: string;
  delegates?: string[];
  /** `gcloud`: ask the gcloud CLI for its own identity token instead of using ADC. */
  source: 'adc' | 'gcloud';
  metadataTimeoutMs: number;
  authTimeoutMs: number;
  endpoints: Endpoints;
  certsUrl: string;
  /** Ask for the email claim (generateIdToken includeEmail): on, except for `token` without --include-email. */
  includeEmail: boolean;
  /** The metadata server's ID-token format: `full` carries the email claim. */
  format: 'standard' | 'full';
  probeMetadata?: 'always' | 'when-needed' | 'when-likely';
}

export function resolveSourceOptions(raw: Raw): SourceOptions {
  const source = setting(raw, 'source') ?? DEFAULTS.source;
  if (source !== 'adc' && source !== 'gcloud') throw usageError(`--source ${source} is not adc or gcloud.`, 'Use --source adc or --source gcloud.');
  const credentials = setting(raw, 'credentials');
  const impersonate = setting(raw, 'impersonate-service-account');
  if (impersonate !== undefined && !/^[^@\s]+@[^@\s]+$/.test(impersonate)) {
    throw usageError(`--impersonate-service-account ${JSON.stringify(impersonate)} is not a service-account email.`, 'Pass an email such as invoker@PROJECT.iam.gserviceaccount.com.');
  }
  if (source === 'gcloud' && credentials !== undefined) throw usageError('--source gcloud and --credentials cannot be combined: gcloud uses its own credentials.', 'Drop one of them.');
  const delegates = (raw.delegates as string[] | undefined)?.flatMap((d) => String(d).split(',')).map((d) => d.trim()).filter(Boolean);
  return {
    ...optional('credentials', credentials),
    ...optional('impersonate', impersonate),
    ...(delegates?.length ? { delegates } : {}),
    source,
    metadataTimeoutMs: parseDuration(setting(raw, 'metadata-timeout'), DEFAULTS.metadataTimeoutMs, 'metadata-timeout'),
    authTimeoutMs: parseDuration(setting(raw, 'auth-timeout'), DEFAULTS.authTimeoutMs, 'auth-timeout'),
    endpoints: {
      ...optional('token', endpointUrl(setting(raw, 'token-url'), 'token-url')),
      ...optional('iam', endpointUrl(setting(raw, 'iam-url'), 'iam-url')),
      ...optional('sts', endpointUrl(setting(raw, 'sts-url'), 'sts-url')),
    },
    certsUrl: endpointUrl(setting(raw, 'certs-url'), 'certs-url') ?? DEFAULTS.certsUrl,
    includeEmail: DEFAULTS.includeEmail,
    format: DEFAULTS.metadataFormat,
  };
}

/** How a token is minted for a kind of target: IAP needs the email claim (includeEmail, metadata format=full, §11.2). */
export function mintOptionsFor<T extends SourceOptions>(options: T, kind: TargetKind | undefined): T {
  return kind === 'iap' ? { ...options, includeEmail: true, format: 'full' } : options;
}

export interface TokenOptions extends SourceOptions {
  audience?: string;
  targetKind?: TargetKind;
}

export function resolveTokenOptions(raw: Raw): TokenOptions {
  const audience = setting(raw, 'audience');
  return {
    ...resolveSourceOptions(raw),
    ...optional('audience', audience),
    ...optional('targetKind', targetKind(raw)),
    // gcloud auth print-identity-token's rule: the email claim only when asked for.
    includeEmail: Boolean(raw['include-email']),
    ...(raw.format ? { format: raw.format as 'standard' | 'full' } : {}),
  };
}

export interface DoctorOptions extends SourceOptions {
  audience?: string;
  targetKind?: TargetKind;
}

export function resolveDoctorOptions(raw: Raw): DoctorOptions {
  return { ...resolveSourceOptions(raw), ...optional('audience', setting(raw, 'audience')), ...optional('targetKind', targetKind(raw)) };
}

export interface InspectSettings {
  audience?: string;
  targetKind?: TargetKind;
}

export function resolveInspectSettings(raw: Raw): InspectSettings {
  return { ...optional('audience', setting(raw, 'audience')), ...optional('targetKind', targetKind(raw)) };
}

/** `call`: everything but the body's bytes and the sink, which the caller reads or opens (a file, stdin, a stream). */
export interface CallSettings {
  url: string;
  audience?: string;
  /** --target-kind: overrides what the host name says. */
  targetKind?: TargetKind;
  method: string;
  headerName: TokenHeaderName;
  timeoutMs: number;
  /** Bound for the whole exchange with the target (--max-time); undefined for none. */
  maxTimeMs?: number;
  /** Bytes of response body kept for the report; Infinity for all. */
  bodyLimit: number;
  allowInsecure: boolean;
  /** --resolve and --connect-to (curl's); the --cacert file's path, read by the caller (it is I/O). */
  routing: { resolve: Resolve[]; connectTo: ConnectTo[] };
  cacert?: string;
}

export function resolveCallSettings(raw: Raw, hasBody: boolean): CallSettings {
  const bodyFlag = setting(raw, 'body') ?? String(DEFAULTS.bodyExcerptBytes);
  const bodyLimit = bodyFlag === 'full' ? Infinity : Number(bodyFlag);
  if (!Number.isInteger(bodyLimit) && bodyLimit !== Infinity) throw usageError(`--body ${bodyFlag} is not a byte count or "full".`, 'Use --body 200, --body 4096 or --body full.');
  const method = setting(raw, 'method') ?? (hasBody ? DEFAULTS.methodWithBody : DEFAULTS.method);
  if (!/^[A-Za-z]+$/.test(method)) throw usageError(`--method ${JSON.stringify(method)} is not an HTTP method.`, 'Use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.');
  const maxTime = setting(raw, 'max-time');
  const audience = setting(raw, 'audience');
  return {
    url: String(raw.url ?? ''),
    ...optional('audience', audience),
    ...optional('targetKind', targetKind(raw)),
    method: method.toUpperCase(),
    headerName: headerName(raw),
    timeoutMs: parseDuration(setting(raw, 'timeout'), DEFAULTS.timeoutMs, 'timeout'),
    ...(maxTime !== undefined ? { maxTimeMs: parseDuration(maxTime, 0, 'max-time', DEFAULTS.maxTimeLimitMs) } : {}),
    bodyLimit: Math.max(0, bodyLimit),
    allowInsecure: Boolean(raw['allow-insecure']),
    routing: routingOf(raw),
    ...optional('cacert', setting(raw, 'cacert')),
  };
}

/** --resolve and --connect-to, repeatable; from IDCALL_RESOLVE / IDCALL_CONNECT_TO, space-separated. */
export function routingOf(raw: Raw): { resolve: Resolve[]; connectTo: ConnectTo[] } {
  const list = (name: string) => ([] as unknown[]).concat(raw[name] ?? []).flatMap((v) => String(v).split(/\s+/)).filter(Boolean);
  return { resolve: list('resolve').map(parseResolve), connectTo: list('connect-to').map(parseConnectTo) };
}

/** The proxy's own settings (the credential is resolved by resolveSourceOptions). */
export interface ProxySettings {
  listen: string;
  targetKind?: TargetKind;
  headerName: TokenHeaderName;
  upstreamTimeoutMs: number;
  shutdownTimeoutMs: number;
  logFormat: 'text' | 'json' | 'none';
}

export function resolveProxySettings(raw: Raw, forward: boolean): ProxySettings {
  const logFormat = setting(raw, 'log-format') ?? DEFAULTS.logFormat;
  if (logFormat !== 'text' && logFormat !== 'json' && logFormat !== 'none') throw usageError(`--log-format ${logFormat} is not text, json or none.`, 'Use --log-format text, json or none.');
  return {
    listen: setting(raw, 'listen') ?? (forward ? DEFAULTS.forwardListen : DEFAULTS.reverseListen),
    ...optional('targetKind', targetKind(raw)),
    headerName: headerName(raw),
    upstreamTimeoutMs: parseDuration(setting(raw, 'upstream-timeout'), DEFAULTS.upstreamTimeoutMs, 'upstream-timeout'),
    shutdownTimeoutMs: parseDuration(setting(raw, 'shutdown-timeout'), DEFAULTS.shutdownTimeoutMs, 'shutdown-timeout'),
    logFormat,
  };
}
