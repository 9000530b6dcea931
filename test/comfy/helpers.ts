// Shared set-up for the comfy tests: a fake ComfyUI in a temp dir, removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { spawn as nodeSpawn } from 'node:child_process';
import { ComfyClient, type ComfyClientOptions } from '../../src/comfy/client';
import { ComfySupervisor, type ComfySettingNames, type ComfySupervisorOptions } from '../../src/comfy/supervisor';
import type { Logger } from '../../src/lib/logger';
import { silentLogger } from '../../src/lib/logger';
import { FakeComfyUI } from '../fakes/comfyui';
import { expect } from '@jest/globals';
import { WorkerError } from '../../src/lib/errors';

export interface Harness {
  fake: FakeComfyUI;
  root: string;
  dirs: { input: string; output: string; temp: string };
  client(opts?: Partial<ComfyClientOptions> & { local?: boolean }): ComfyClient;
  close(): Promise<void>;
}

export async function startHarness(nodeClasses?: readonly string[]): Promise<Harness> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'comfy-test-'));
  const dirs = { input: path.join(root, 'input'), output: path.join(root, 'output'), temp: path.join(root, 'temp') };
  const fake = await FakeComfyUI.start({ dirs, ...(nodeClasses ? { nodeClasses } : {}) });
  return {
    fake,
    root,
    dirs,
    client: ({ local = true, ...opts } = {}) =>
      new ComfyClient({
        endpoint: local ? { baseUrl: fake.url, inputDir: dirs.input, outputDir: dirs.output, tempDir: dirs.temp } : { baseUrl: fake.url },
        logger: silentLogger,
        socketOpenTimeoutMs: 2000,
        pollIntervalMs: 20,
        idlePollIntervalMs: 5000,
        // 15 s as in production: a busy test machine must not pass for a lost ComfyUI. Tests of that verdict set their own.
        lostAfterMs: 15_000,
        reconnectMinMs: 10,
        reconnectMaxMs: 40,
        ...opts,
      }),
    close: async () => {
      await fake.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The SteadyDancer shape in miniature: inputs → sampler → VHS combine. */
export function vhsWorkflow(prefix = 'steadydancer'): Record<string, unknown> {
  return {
    '1': { class_type: 'LoadImage', inputs: { image: 'ref.png' } },
    '2': { class_type: 'WanVideoSampler', inputs: { image: ['1', 0], steps: 4 } },
    '3': { class_type: 'VHS_VideoCombine', inputs: { images: ['2', 0], frame_rate: 16, filename_prefix: prefix, save_output: true } },
  };
}

export function saveVideoWorkflow(): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 4, color: 0 } },
    '2': { class_type: 'KSampler', inputs: { latent: ['1', 0] } },
    '3': { class_type: 'CreateVideo', inputs: { images: ['2', 0], fps: 8 } },
    '4': { class_type: 'SaveVideo', inputs: { video: ['3', 0], filename_prefix: 'video/ComfyUI', format: 'auto', codec: 'auto' } },
    '5': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
  };
}

/** A Logger that records lines, for assertions on what reached the logs. */
export function recordingLogger(): Logger & { lines: { level: string; message: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const make = (base: Record<string, unknown>): Logger => ({
    debug: (message, f) => lines.push({ level: 'debug', message, fields: { ...base, ...f } }),
    info: (message, f) => lines.push({ level: 'info', message, fields: { ...base, ...f } }),
    warn: (message, f) => lines.push({ level: 'warn', message, fields: { ...base, ...f } }),
    error: (message, f) => lines.push({ level: 'error', message, fields: { ...base, ...f } }),
    child: (f) => make({ ...base, ...f }),
  });
  return Object.assign(make({}), { lines });
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The WorkerError a promise rejects with (fails the test if it resolves or throws something else). */
export async function rejection(p: Promise<unknown>): Promise<WorkerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkerError);
  return err as WorkerError;
}

/**
 * A supervisor attached to the ComfyUI at `url` (COMFYUI_URL), as the worker runs beside an external one:
 * it must never spawn ComfyUI itself. Options override the defaults (temp workDir, VHS as the one required class).
 */
export function attachedSupervisor(
  url: string,
  over: Partial<ComfySupervisorOptions> & { startupTimeoutMs?: number; names?: ComfySettingNames } = {},
): ComfySupervisor {
  const { startupTimeoutMs = 10_000, names, ...rest } = over;
  return new ComfySupervisor({
    config: {
      dir: '/nonexistent',
      python: 'python3',
      url,
      port: 1,
      extraArgs: [],
      startupTimeoutMs,
      extraModelPathsConfig: undefined,
      ...(names ? { names } : {}),
    },
    workDir: os.tmpdir(),
    requiredNodeClasses: ['VHS_VideoCombine'],
    logger: silentLogger,
    spawn: (() => {
      throw new Error('must not spawn');
    }) as unknown as typeof nodeSpawn,
    ...rest,
  });
}
