// --cacert FILE for call and proxy: PEM certificates, read bounded and checked before anything is sent.
import { IdcallError, usageError } from '../core/errors.ts';
import { readBoundedFile } from '../core/files.ts';

export async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = (await readBoundedFile(path, 1024 * 1024)).bytes.toString('utf8');
  } catch (err) {
    throw new IdcallError('USAGE_ERROR', `--cacert ${path}: ${(err as Error).message}.`, 'Point --cacert (or IDCALL_CACERT) at a PEM file of CA certificates.', { cause: err });
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(text)) throw usageError(`--cacert ${path} holds no PEM certificate.`, 'Point --cacert (or IDCALL_CACERT) at a PEM file of CA certificates (-----BEGIN CERTIFICATE-----).');
  return text;
}
