// The supported runtime, and a clear failure where an older Node cannot load a dependency.
import { IdcallError } from './errors.ts';

export const MIN_NODE_MAJOR = 22;

export function nodeTooOld(version = process.versions.node): boolean {
  return Number(version.split('.')[0]) < MIN_NODE_MAJOR;
}

/** Node's own proxy support (an http Agent's `proxyEnv`) arrived in 22.21 and 24.5. */
export function nodeHasProxyAgents(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 24 || (major === 24 && minor >= 5) || (major === 22 && minor >= 21);
}

/** Import a module whose dependencies need Node 22+ (undici 8); on failure say so instead of blaming the network. */
export async function importForModernNode<T>(load: () => Promise<T>, what: string): Promise<T> {
  try {
    return await load();
  } catch (err) {
    throw new IdcallError(
      'USAGE_ERROR',
      `${what} needs Node.js ${MIN_NODE_MAJOR} or newer; this is Node.js ${process.versions.node}, and a dependency failed to load (${(err as Error).message}).`,
      `Run idcall on Node.js ${MIN_NODE_MAJOR}+ (from a checkout, npx idcall uses the Node 24 that npm install brought).`,
      { cause: err },
    );
  }
}
