// s5cmd, the reference S3 uploader the storage bench compares against, built once from the Go
// module proxy at a pinned version and cached beside the versitygw test server.
// Not `go install …@version`: that also reads the module's version list (for deprecation
// notices), which the proxy refuses for s5cmd; a throwaway module needs only the pinned version.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot } from '../test/setup/s3-server';

export const S5CMD_MODULE = 'github.com/peak/s5cmd/v2';
export const S5CMD_VERSION = 'v2.3.0';

function go(args: string[], cwd: string): Promise<void> {
  const bin = process.env.GO_BIN ?? 'go';
  const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false', GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'auto' };
  return new Promise((resolve, reject) =>
    execFile(bin, args, { cwd, env, timeout: 15 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, _out, stderr) =>
      err
        ? reject(new Error(`${bin} ${args.join(' ')} failed (need Go ≥ 1.21 on PATH, or S5CMD_BIN): ${err.message}\n${stderr}`))
        : resolve(),
    ),
  );
}

/** The s5cmd binary (S5CMD_BIN, or built on first use, ~1 min on 2 cores). */
export async function ensureS5cmd(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  if (process.env.S5CMD_BIN) return process.env.S5CMD_BIN;
  const dir = path.join(cacheRoot(), `s5cmd-${S5CMD_VERSION}`);
  const bin = path.join(dir, 's5cmd');
  if (existsSync(bin)) return bin;
  await mkdir(cacheRoot(), { recursive: true });
  const staging = await mkdtemp(path.join(cacheRoot(), 'build-s5cmd-'));
  log(`building s5cmd ${S5CMD_VERSION} from the Go module proxy (once; cached in ${dir})…`);
  try {
    await writeFile(path.join(staging, 'go.mod'), 'module s5cmd-build\n\ngo 1.21\n');
    await go(['get', `${S5CMD_MODULE}@${S5CMD_VERSION}`], staging);
    await go(['build', '-trimpath', '-o', path.join(staging, 's5cmd'), S5CMD_MODULE], staging);
    await mkdir(dir, { recursive: true });
    await rename(path.join(staging, 's5cmd'), bin).catch((error: NodeJS.ErrnoException) => {
      if (!existsSync(bin)) throw error; // a concurrent build won: its binary is as good
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return bin;
}
