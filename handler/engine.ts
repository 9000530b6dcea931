// Settles how the workflow runs on this card: the GPU self-check (docker/attention_check.py, with
// ComfyUI's Python) runs once beside ComfyUI's boot, and jobs wait for it as they wait for ComfyUI.
import type { Config } from '../src/config';
import { chooseEngineSettings, runGpuCheck, UNCHECKED_ENGINE, type EngineSettings } from '../src/gpu';
import type { Logger } from '../src/lib/logger';

export interface Engine {
  /** Resolves once the settings are final (never rejects). */
  readonly settled: Promise<void>;
  current(): EngineSettings;
}

const CHECK_TIMEOUT_MS = 120_000;

export function startEngine(config: Config, logger: Logger, localGpu: boolean): Engine {
  let settings: EngineSettings = UNCHECKED_ENGINE;
  const check = localGpu
    ? runGpuCheck({ python: config.comfy.python, script: config.engine.checkScript, timeoutMs: CHECK_TIMEOUT_MS })
    : Promise.resolve({ error: 'ComfyUI runs elsewhere (COMFYUI_URL)' });
  const settled = check.then((result) => {
    const report = 'report' in result ? result.report : undefined;
    settings = chooseEngineSettings({
      attention: config.engine.attention,
      vram: config.engine.vram,
      blockSwap: config.engine.blockSwap,
      compile: config.engine.compile,
      precision: config.modelPrecision,
      report,
      ...('error' in result ? { checkError: result.error } : {}),
    });
    const sage = report?.modes['sageattn'];
    const fields = {
      attention: settings.attention,
      residentModel: settings.residentModel,
      memoryMode: settings.memoryMode,
      blockSwap: settings.blockSwap,
      vaeTilingAbovePixels: settings.vaeTilingAbovePixels,
      compile: settings.compile,
      reasons: settings.reasons,
      ...(report
        ? {
            gpu: report.gpu,
            capability: report.capability,
            memoryGiB: Math.round(report.total_memory_bytes / 1024 ** 3),
            ...(report.memory_cap_bytes ? { memoryCapGiB: Number((report.memory_cap_bytes / 1024 ** 3).toFixed(1)) } : {}),
            torch: report.torch,
            sageattention: report.sageattention,
          }
        : {}),
    };
    if (sage && !sage.ok && config.engine.attention !== 'sdpa') {
      // A broken kernel is an image problem the operator must hear about, not a silent slowdown; with
      // ATTENTION_MODE=sdpa SageAttention was not asked for, so its state is only a field of the info line.
      logger.error('SageAttention failed the start-up check on this GPU: using exact SDPA instead', { ...fields, sageattn: sage });
    } else {
      logger.info('engine settings', { ...fields, ...(sage ? { sageattn: sage } : {}) });
    }
  });
  return { settled, current: () => settings };
}
