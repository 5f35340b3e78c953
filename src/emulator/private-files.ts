// Writing credential files into a directory someone else may have prepared: never through a symlink planted there,
// never into a directory others can write to, always 0600 files in 0700 directories, whatever was there before.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export class UnsafeDirectoryError extends Error {
  override name = 'UnsafeDirectoryError';
}

/** Make `dir` (0700 if created) and check it is a directory no other user can write to. */
export async function privateDirectory(dir: string, { top }: { top: boolean }): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The directory the user named may be reached through a symlink of theirs; one inside it is not followed.
  const info = top ? await stat(dir) : await lstat(dir);
  if (info.isSymbolicLink()) throw new UnsafeDirectoryError(`${dir} is a symbolic link; credential files are not written through links`);
  if (!info.isDirectory()) throw new UnsafeDirectoryError(`${dir} is not a directory`);
  if (process.platform !== 'win32' && (info.mode & 0o022) !== 0) {
    throw new UnsafeDirectoryError(`${dir} is writable by other users (mode ${(info.mode & 0o7777).toString(8)}); they could replace the credential files written there`);
  }
}

/**
 * Write `content` to `dir/name` as a new 0600 file: written beside it with O_EXCL, then renamed over the name, so a
 * symlink, FIFO or loosely-permissioned file already at that name is replaced, never followed or reused.
 */
export async function writePrivateFile(dir: string, name: string, content: string): Promise<string> {
  const path = join(dir, name);
  const existing = await lstat(path).catch(() => null);
  if (existing?.isDirectory()) throw new UnsafeDirectoryError(`${path} is a directory`);
  const temporary = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.chmod(0o600);
  } catch (err) {
    await handle.close();
    await rm(temporary, { force: true });
    throw err;
  }
  await handle.close();
  await rename(temporary, path);
  return path;
}
