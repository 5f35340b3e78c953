// A port someone else holds is a usage mistake with a named way out, not a bug report.
import { IdcallError } from '../core/errors.ts';

export async function listenOrExplain<T>(what: string, fix: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new IdcallError('USAGE_ERROR', `${what}: the port is already in use.`, `Pick another: ${fix}.`, { cause: err });
    if (code === 'EACCES') throw new IdcallError('USAGE_ERROR', `${what}: this user may not listen on that port (below 1024 needs privileges).`, `Pick another: ${fix}.`, { cause: err });
    if (code === 'EADDRNOTAVAIL') throw new IdcallError('USAGE_ERROR', `${what}: that address is not on this machine.`, `Listen on 127.0.0.1, or on an address this machine has.`, { cause: err });
    throw err;
  }
}
