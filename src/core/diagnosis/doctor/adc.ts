// The ADC sources in Google's order: which one is used, which are present but not used, and none at all.
import { describeFileProblem, fileProblem } from '../../files.ts';
import { credentialFileFix } from '../../google/load.ts';
import { toRequestRecords } from '../../report.ts';
import { check, type DoctorCheck } from './check.ts';

export const adcSources: DoctorCheck = async (_ctx, _options, { discovery }) => {
  if (!discovery) return { checks: [check('adc', 'ok', 'ADC discovery skipped: --source gcloud uses the gcloud CLI\'s own credentials')] };
  const problem = discovery.winner?.origin !== 'metadata_server' && discovery.winner?.path ? await fileProblem(discovery.winner.path) : null;
  const winnerMissing = problem !== null;
  const checks = discovery.candidates.map((c, i) => {
    const winner = c === discovery.winner;
    const label = c.origin === 'metadata_server' ? `metadata server ${c.path} (${c.via})` : `${c.via} ${c.path}`;
    // ADC stops at the first source named, even when its file is missing: Google's libraries fail there too.
    const state = winner ? (problem ? `in use, but the file ${describeFileProblem(problem)} (ADC fails here; it does not fall back to the next source)` : 'in use') : c.present ? 'present, not used (a source above comes first)' : (c.note ?? 'absent');
    // A present source below the winner is ADC's documented order at work (a key file beside a gcloud login is the
    // common case, and the emulator's own env.sh is one), so it is shown, not warned about.
    return check(`adc:${c.origin}`, winner ? (winnerMissing ? 'fail' : 'ok') : 'skipped', `${i + 1}. ${label}: ${state}`, {
      ...(winner && problem ? { code: 'CREDENTIALS_FILE_ERROR' as const, fix: credentialFileFix(problem, c.via) } : {}),
      ...(c.present && !winner ? { details: [`To use it: ${c.origin === 'well_known_file' ? 'unset GOOGLE_APPLICATION_CREDENTIALS (and drop --credentials)' : 'remove the sources above it'}.`] } : {}),
      ...(c.origin === 'metadata_server' ? { requests: toRequestRecords(discovery.exchanges) } : {}),
    });
  });
  if (!discovery.winner) {
    checks.push(
      check('adc', 'fail', 'No Application Default Credentials found: no --credentials, no GOOGLE_APPLICATION_CREDENTIALS, no gcloud application-default login, and no metadata server.', {
        fix: 'Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key or credential file, or pass --credentials FILE.',
        code: 'NO_CREDENTIALS',
      }),
    );
  }
  return { checks, found: { exchanges: [...discovery.exchanges] } };
};
