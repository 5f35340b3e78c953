// The one way idcall reads a file: regular files only (a FIFO would block forever, /dev/zero never end), opened
// non-blocking so a file swapped for a FIFO after the check cannot hang us, and never more than a size cap.
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/** A workload-identity subject token is a JWT or a small JSON document. */
export const SUBJECT_TOKEN_MAX_BYTES = 1024 * 1024;

export type FileProblem = 'missing' | 'directory' | 'not_regular' | 'too_large' | 'denied' | 'unreadable';

export class FileReadError extends Error {
  override name = 'FileReadError';
  readonly problem: FileProblem;
  readonly path: string;
  /** For too_large: the size seen (bytes). */
  readonly size?: number;

  constructor(problem: FileProblem, path: string, message: string, options: { cause?: unknown; size?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.problem = problem;
    this.path = path;
    if (options.size !== undefined) this.size = options.size;
  }
}

const DESCRIBE: Record<FileProblem, string> = {
  missing: 'does not exist',
  directory: 'is a directory, not a file',
  not_regular: 'is not a regular file (a FIFO, socket or device)',
  too_large: 'is too large',
  denied: 'cannot be read: permission denied',
  unreadable: 'cannot be read',
};

/** What is wrong with the file, as the end of a sentence that starts with its name. */
export const describeFileProblem = (problem: FileProblem) => DESCRIBE[problem];

function classify(err: unknown, path: string): FileReadError {
  if (err instanceof FileReadError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const problem: FileProblem = code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : code === 'EISDIR' ? 'directory' : code === 'EACCES' || code === 'EPERM' ? 'denied' : 'unreadable';
  return new FileReadError(problem, path, `${path} ${DESCRIBE[problem]}${problem === 'unreadable' && code ? ` (${code})` : ''}`, { cause: err });
}

/** Read a whole regular file of at most `maxBytes`; anything else is a FileReadError naming the problem. */
export async function readBoundedFile(path: string, maxBytes: number): Promise<{ bytes: Buffer; mode: number }> {
  let handle;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new FileReadError('directory', path, `${path} ${DESCRIBE.directory}`);
    if (!info.isFile()) throw new FileReadError('not_regular', path, `${path} ${DESCRIBE.not_regular}`);
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw classify(err, path);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new FileReadError('not_regular', path, `${path} ${DESCRIBE.not_regular}`);
    if (info.size > maxBytes) throw new FileReadError('too_large', path, `${path} is ${info.size} bytes (at most ${maxBytes} expected)`, { size: info.size });
    // The size can lie (procfs, a file still growing): read at most one byte past the cap to know.
    let grow = Buffer.alloc(Math.min(maxBytes + 1, info.size + 1));
    let filled = 0;
    for (;;) {
      if (filled === grow.length) {
        if (grow.length > maxBytes) break;
        const bigger = Buffer.alloc(Math.min(maxBytes + 1, grow.length * 2 + 4096));
        grow.copy(bigger, 0, 0, filled);
        grow = bigger;
      }
      const { bytesRead } = await handle.read(grow, filled, grow.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > maxBytes) throw new FileReadError('too_large', path, `${path} is larger than ${maxBytes} bytes`, { size: filled });
    return { bytes: grow.subarray(0, filled), mode: info.mode };
  } catch (err) {
    throw classify(err, path);
  } finally {
    await handle.close();
  }
}

/** What stops `path` being read as a regular file (following links), or null when nothing does. */
export async function fileProblem(path: string): Promise<FileProblem | null> {
  try {
    const info = await stat(path);
    return info.isDirectory() ? 'directory' : info.isFile() ? null : 'not_regular';
  } catch (err) {
    return classify(err, path).problem;
  }
}

/** Whether `path` is a regular file (following links); false when it is anything else or missing. */
export const isRegularFile = (path: string): Promise<boolean> => stat(path).then((info) => info.isFile(), () => false);

export const isDirectory = (path: string): Promise<boolean> => stat(path).then((info) => info.isDirectory(), () => false);

/** A small text file that may legitimately be absent: its text, or undefined when missing. Other problems throw. */
export async function readOptionalText(path: string, maxBytes: number): Promise<string | undefined> {
  try {
    return (await readBoundedFile(path, maxBytes)).bytes.toString('utf8');
  } catch (err) {
    if (err instanceof FileReadError && err.problem === 'missing') return undefined;
    throw err;
  }
}
