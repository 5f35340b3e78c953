// Options shared by the commands that obtain a token; flag → IDCALL_* environment (main.ts middleware) → default.
import type { Argv } from 'yargs';
import { usageError } from '../core/errors.ts';
import type { SourceOptions } from '../core/steps.ts';
import { GOOGLE_CERTS_URL } from '../core/transport.ts';

export function withGlobalOptions<T>(y: Argv<T>) {
  return y
    .option('json', { type: 'boolean', describe: 'Print the report as one JSON document on stdout' })
    .option('debug', { type: 'boolean', describe: 'Show stack traces for unexpected errors' })
    .option('color', { type: 'boolean', describe: 'Colour output on a terminal (--no-color turns it off; NO_COLOR is honoured)' });
}

export function withSourceOptions<T>(y: Argv<T>) {
  return y
    .option('credentials', { type: 'string', describe: 'Credential file to use instead of Application Default Credentials discovery', group: 'Credentials:' })
    .option('impersonate-service-account', { type: 'string', describe: 'Mint the token as this service account, authorised by whatever credential is found', group: 'Credentials:' })
    .option('delegates', { type: 'string', array: true, describe: 'Delegation chain for impersonation (service-account emails)', group: 'Credentials:' })
    .option('source', { choices: ['adc', 'gcloud'] as const, describe: 'adc (default): Application Default Credentials; gcloud: ask the gcloud CLI for its own identity token', group: 'Credentials:' })
    .option('metadata-timeout', { type: 'string', describe: 'Bound for the metadata-server check (default 1000 ms; IDCALL_METADATA_TIMEOUT)', group: 'Endpoints and limits:' })
    .option('auth-timeout', { type: 'string', describe: 'Bound for each request to a Google auth endpoint (default 10000 ms; IDCALL_AUTH_TIMEOUT)', group: 'Endpoints and limits:' })
    .option('token-url', { type: 'string', describe: 'OAuth token URL, e.g. https://oauth2.googleapis.com/token (IDCALL_TOKEN_URL)', group: 'Endpoints and limits:' })
    .option('iam-url', { type: 'string', describe: 'IAM Credentials base URL, e.g. https://iamcredentials.googleapis.com (IDCALL_IAM_URL)', group: 'Endpoints and limits:' })
    .option('sts-url', { type: 'string', describe: 'STS token URL, e.g. https://sts.googleapis.com/v1/token (IDCALL_STS_URL)', group: 'Endpoints and limits:' })
    .option('certs-url', { type: 'string', describe: `Google's signing certificates (default ${GOOGLE_CERTS_URL}; IDCALL_CERTS_URL)`, group: 'Endpoints and limits:' });
}

type Raw = Record<string, unknown>;

/** A flag's value. IDCALL_<NAME> from the environment was already folded in by main.ts's middleware (flag wins). */
export function setting(argv: Raw, name: string): string | undefined {
  const flag = argv[name];
  return flag === undefined || flag === null ? undefined : String(flag);
}

const envName = (flag: string) => `IDCALL_${flag.toUpperCase().replace(/-/g, '_')}`;

/** Durations: "1500", "1500ms", "2s", "1m". */
export function parseDuration(value: string | undefined, fallback: number, flag: string, maxMs = 600_000): number {
  if (value === undefined) return fallback;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
  if (!match) throw usageError(`--${flag} ${JSON.stringify(value)} is not a duration.`, `Give milliseconds (1500), seconds (2s) or minutes (1m) to --${flag} (or ${envName(flag)}).`);
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : match[2] === 'm' ? 60_000 : 1);
  if (ms <= 0 || ms > maxMs) throw usageError(`--${flag} ${value} is out of range.`, `Give --${flag} between 1 ms and ${maxMs / 1000} s.`);
  return Math.round(ms);
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

export function sourceOptions(argv: Raw): SourceOptions {
  const source = setting(argv, 'source');
  if (source !== undefined && source !== 'adc' && source !== 'gcloud') throw usageError(`--source ${source} is not adc or gcloud.`, 'Use --source adc or --source gcloud.');
  const credentials = setting(argv, 'credentials');
  const impersonate = setting(argv, 'impersonate-service-account');
  if (impersonate !== undefined && !/^[^@\s]+@[^@\s]+$/.test(impersonate)) {
    throw usageError(`--impersonate-service-account ${JSON.stringify(impersonate)} is not a service-account email.`, 'Pass an email such as invoker@PROJECT.iam.gserviceaccount.com.');
  }
  if (source === 'gcloud' && credentials !== undefined) throw usageError('--source gcloud and --credentials cannot be combined: gcloud uses its own credentials.', 'Drop one of them.');
  const delegates = (argv.delegates as string[] | undefined)?.flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
  const endpoints = {
    ...optional('token', endpointUrl(setting(argv, 'token-url'), 'token-url')),
    ...optional('iam', endpointUrl(setting(argv, 'iam-url'), 'iam-url')),
    ...optional('sts', endpointUrl(setting(argv, 'sts-url'), 'sts-url')),
  };
  return {
    ...optional('credentials', credentials),
    ...optional('impersonate', impersonate),
    ...(delegates?.length ? { delegates } : {}),
    source: (source as 'adc' | 'gcloud' | undefined) ?? 'adc',
    metadataTimeoutMs: parseDuration(setting(argv, 'metadata-timeout'), 1000, 'metadata-timeout'),
    authTimeoutMs: parseDuration(setting(argv, 'auth-timeout'), 10_000, 'auth-timeout'),
    endpoints,
    certsUrl: endpointUrl(setting(argv, 'certs-url'), 'certs-url') ?? GOOGLE_CERTS_URL,
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** Header names are case-insensitive (RFC 9110 §5.1): `--header-name x-serverless-authorization` is the same choice. */
export function canonicalHeaderName(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  return ['Authorization', 'X-Serverless-Authorization'].find((name) => name.toLowerCase() === value.trim().toLowerCase()) ?? value;
}
