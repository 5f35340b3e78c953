// discover → load → mint → verify as one unit: what `call`, `token` and the library share.
import type { Context } from '../context.ts';
import type { IdcallError } from '../errors.ts';
import type { Shadowed, Source, Step } from '../report.ts';
import { runDiscover, runLoad, runMint, runVerify, StepFailure, type Minted, type Resolved } from './steps.ts';
import type { SourceOptions } from '../options.ts';
import type { VerifyResult } from '../google/verify.ts';

export interface Obtained {
  steps: Step[];
  source: Source | null;
  shadowed: Shadowed[];
  resolved: Resolved | null;
  minted: Minted | null;
  verify: VerifyResult | null;
  /** The failure that stopped the run; the failed step is the last in `steps`. */
  error: IdcallError | null;
}

/** `requireEmail`: the target needs the email claim (IAP), so the verify step checks for it. */
export async function obtainToken(ctx: Context, audience: string, options: SourceOptions, expectedAudience: string | null = audience, requireEmail = false): Promise<Obtained> {
  const out: Obtained = { steps: [], source: null, shadowed: [], resolved: null, minted: null, verify: null, error: null };
  try {
    const d = await runDiscover(ctx, options);
    out.steps.push(d.step);
    const l = await runLoad(ctx, d.discovery, options);
    out.steps.push(l.step);
    out.resolved = l.resolved;
    out.source = l.resolved.source;
    out.shadowed = l.resolved.shadowed;
    const m = await runMint(ctx, l.resolved, audience, options);
    out.steps.push(m.step);
    out.minted = m.minted;
    // Who the token is for is known for sure only once minted (a metadata server, a user file without `account`).
    if (out.source && !out.source.principal && m.minted.principal) out.source = { ...out.source, principal: m.minted.principal };
    const v = await runVerify(ctx, m.minted, expectedAudience, options, requireEmail);
    out.steps.push(v.step);
    out.verify = v.verify;
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    out.steps.push(err.step);
    out.error = err.error;
  }
  return out;
}
