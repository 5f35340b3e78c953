// --json: exactly the report object, one document, redacted like everything else.
import { redactValue } from '../core/redact.ts';

export function renderJson(report: unknown): string {
  return JSON.stringify(redactValue(report), null, 2) + '\n';
}
