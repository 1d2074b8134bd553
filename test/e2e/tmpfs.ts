/**
 * A small tmpfs for tests of full disks: a real filesystem whose writes fail with ENOSPC. Mounting
 * needs root (CAP_SYS_ADMIN); `mountTmpfs` says whether it worked.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export function mountTmpfs(dir: string, sizeKB: number): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKB}k`, 'tmpfs', dir], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

export function unmount(dir: string): void {
  execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/**
 * Fill the filesystem at `dir` with 16 KiB files until a write fails with ENOSPC, then delete
 * enough of them to leave about `leaveKB` free. Returns the filler directory.
 */
export function fillUp(dir: string, leaveKB: number): string {
  const filler = join(dir, 'filler');
  mkdirSync(filler, { recursive: true });
  const chunk = Buffer.alloc(16 * 1024, 1);
  let n = 0;
  for (let full = false; !full; n++) {
    const fd = openSync(join(filler, String(n)), 'w');
    try {
      writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      full = true;
    } finally {
      closeSync(fd);
    }
  }
  for (let k = 0; k <= Math.ceil(leaveKB / 16) && k <= n; k++)
    rmSync(join(filler, String(k)), { force: true });
  return filler;
}
