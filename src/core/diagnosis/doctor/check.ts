// What a doctor check is: a function from what the checks before it found to rows of the report, and what it adds to
// that picture. Adding a check to doctor is writing one of these and naming it in index.ts's DOCTOR_CHECKS.
import type { Context } from '../../context.ts';
import type { Discovery } from '../../google/discover.ts';
import type { GcloudState } from '../../google/gcloud.ts';
import type { DoctorOptions } from '../../options.ts';
import type { Check, Shadowed, Source } from '../../report.ts';
import type { Resolved } from '../../steps/steps.ts';
import type { Exchange } from '../../net/transport.ts';

/** Everything found so far; each check reads it and returns what it adds (nothing is changed in place). */
export interface Found {
  /** ADC discovery; null with --source gcloud, which does not use ADC. */
  discovery: Discovery | null;
  gcloud: GcloudState;
  resolved: Resolved | null;
  source: Source | null;
  shadowed: Shadowed[];
  /** Every exchange with Google so far, for the clock check. */
  exchanges: Exchange[];
}

export interface CheckResult {
  checks: Check[];
  found?: Partial<Found>;
}

export type DoctorCheck = (ctx: Context, options: DoctorOptions, found: Readonly<Found>) => Promise<CheckResult>;

export const check = (id: string, status: Check['status'], summary: string, more: Partial<Omit<Check, 'id' | 'status' | 'summary'>> = {}): Check => ({
  id,
  status,
  summary,
  durationMs: more.durationMs ?? 0,
  details: more.details ?? [],
  fix: more.fix ?? '',
  ...(more.code ? { code: more.code } : {}),
  requests: more.requests ?? [],
});
