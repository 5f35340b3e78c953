// The Report: what every command returns, what renderers print, and exactly what --json emits.
import { exitCodeFor, type CauseCode } from './errors.ts';
import type { Exchange, GoogleError } from './net/transport.ts';

export const REPORT_VERSION = 1;

export type StepId = 'discover' | 'load' | 'mint' | 'verify' | 'call';
export type StepStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export type CredentialType =
  | 'service_account'
  | 'authorized_user'
  | 'impersonated_service_account'
  | 'external_account'
  | 'external_account_authorized_user'
  | 'gdch_service_account'
  | 'compute'
  | 'gcloud';

export type Origin = 'flag' | 'GOOGLE_APPLICATION_CREDENTIALS' | 'well_known_file' | 'metadata_server' | 'gcloud';

export interface RequestRecord {
  method: string;
  url: string;
  status: number | null;
  durationMs: number;
  error?: string;
  googleError?: GoogleError;
  /** The proxy it went through, when HTTPS_PROXY/HTTP_PROXY applied. */
  proxy?: string;
}

export interface Step {
  id: StepId;
  status: StepStatus;
  durationMs: number;
  summary: string;
  /** Further lines a person wants to see (claims, shadowed sources, warnings). */
  details: string[];
  requests: RequestRecord[];
}

/** A doctor check: a step of its own kind, with the fix for what it found and the cause code when it is not ok. */
export interface Check extends Omit<Step, 'id'> {
  id: string;
  fix: string;
  code?: CauseCode;
}

export interface DoctorReport {
  version: typeof REPORT_VERSION;
  command: 'doctor';
  ok: boolean;
  verdict: Verdict;
  source: Source | null;
  shadowed: Shadowed[];
  checks: Check[];
  exitCode: number;
}

/** Which side a failure is on: obtaining the token (exit 3 whatever the code), or the target (the code decides). */
export type Side = 'credential' | 'target';

export const sideOfStep = (id: StepId | undefined): Side | undefined => (id === undefined ? undefined : id === 'discover' || id === 'load' || id === 'mint' ? 'credential' : 'target');

/** Every report ends here: its verdict, `ok` and exit status decided the same way for every command. */
export function conclude<R extends { verdict: Verdict; ok: boolean; exitCode: number }>(report: R, verdict: Verdict, side?: Side): R {
  report.verdict = verdict;
  report.ok = verdict.code === 'OK';
  report.exitCode = exitCodeFor(verdict.code, side);
  return report;
}

export interface Verdict {
  code: CauseCode;
  summary: string;
  fix: string;
}

export interface Source {
  type: CredentialType;
  origin: Origin;
  path: string | null;
  principal: string | null;
}

export interface Shadowed {
  origin: Origin;
  path: string | null;
  type: CredentialType | null;
}

/** What was called and the audience minted for: `kind` from --target-kind, the host, or the answer. */
export interface ReportTarget {
  kind: 'cloud_run' | 'cloud_functions' | 'iap' | 'api_gateway' | 'other';
  audience: string;
  audienceSource: 'flag' | 'origin' | 'function_url';
}

export interface CallReport {
  version: typeof REPORT_VERSION;
  command: 'call';
  ok: boolean;
  url: string;
  audience: string | null;
  target: ReportTarget | null;
  verdict: Verdict;
  source: Source | null;
  shadowed: Shadowed[];
  steps: Step[];
  token: { claims: Record<string, unknown> } | null;
  response: {
    status: number;
    headers: Record<string, string>;
    bodyExcerpt: string;
    bodyBytes: number;
    redirect?: string;
    timings?: { connectMs?: number; firstByteMs?: number; totalMs: number };
  } | null;
  exitCode: number;
}

export function toRequestRecords(exchanges: Exchange[]): RequestRecord[] {
  return exchanges.map((e) => ({
    method: e.method,
    url: e.url,
    status: e.status ?? null,
    durationMs: e.durationMs,
    ...(e.error ? { error: e.error } : {}),
    ...(e.googleError ? { googleError: e.googleError } : {}),
    ...(e.proxy ? { proxy: e.proxy } : {}),
  }));
}

export interface TokenReport {
  version: typeof REPORT_VERSION;
  command: 'token';
  ok: boolean;
  audience: string;
  target: ReportTarget | null;
  verdict: Verdict;
  source: Source | null;
  shadowed: Shadowed[];
  steps: Step[];
  token: { header: Record<string, unknown>; claims: Record<string, unknown> } | null;
  exitCode: number;
}

export interface InspectReport {
  version: typeof REPORT_VERSION;
  command: 'inspect';
  ok: boolean;
  verdict: Verdict;
  /** id_token, access_token (opaque ya29.…), or not_a_jwt. */
  kind: 'id_token' | 'access_token' | 'not_a_jwt';
  audience: string | null;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  /** Claims with times a person can read: "expires in 41 min", "expired 3 h ago". */
  times: Record<string, string>;
  /** malformed: a claim of a shape Google never writes (exp 1e308, a numeric aud). */
  findings: { status: 'ok' | 'warn' | 'fail'; code?: string; text: string; malformed?: true }[];
  signature: 'valid' | 'invalid' | 'unknown';
  requests: RequestRecord[];
  exitCode: number;
}
