import { describe, it, expect } from '@jest/globals';
import { cardMemoryGiB, chooseEngineSettings, parseGpuReport, RESIDENT_MIN_GIB, UNCHECKED_ENGINE, type GpuReport } from '../../src/gpu';

const GIB = 1024 ** 3;

function report(over: { memGiB?: number; sage?: GpuReport['modes'][string] | undefined } = {}): GpuReport {
  const modes: GpuReport['modes'] = { sdpa: { ok: true, cosine: 0.999997, rel_l2: 0.002 } };
  if (over.sage !== undefined) modes['sageattn'] = over.sage;
  return {
    ok: true,
    gpu: 'NVIDIA H200',
    capability: '9.0',
    total_memory_bytes: Math.round((over.memGiB ?? 139.8) * GIB),
    torch: '2.9.1+cu128',
    sageattention: '2.2.0',
    modes,
  };
}

const goodSage = { ok: true, cosine: 0.99928, rel_l2: 0.038 };
// What the v2.2.0 tag's sm90 binding returned on an H200: uninitialised memory.
const brokenSage = { ok: false, cosine: 0.000547, rel_l2: 27.65 };

describe('chooseEngineSettings', () => {
  it('uses SageAttention only when it agreed with fp32 attention on this GPU', () => {
    expect(chooseEngineSettings({ attention: 'auto', vram: 'auto', precision: 'fp8', report: report({ sage: goodSage }) }).attention).toBe(
      'sageattn',
    );
    const broken = chooseEngineSettings({ attention: 'auto', vram: 'auto', precision: 'fp8', report: report({ sage: brokenSage }) });
    expect(broken.attention).toBe('sdpa');
    expect(broken.reasons.join(' ')).toMatch(/disagrees .*cosine 0\.000547/);
  });

  it('an operator forcing sageattn does not override a failed check, only a missing one', () => {
    expect(
      chooseEngineSettings({ attention: 'sageattn', vram: 'auto', precision: 'fp8', report: report({ sage: brokenSage }) }).attention,
    ).toBe('sdpa');
    const unchecked = chooseEngineSettings({
      attention: 'sageattn',
      vram: 'auto',
      precision: 'fp8',
      report: undefined,
      checkError: 'ComfyUI runs elsewhere',
    });
    expect(unchecked.attention).toBe('sageattn');
    expect(chooseEngineSettings({ attention: 'auto', vram: 'auto', precision: 'fp8', report: undefined, checkError: 'x' }).attention).toBe(
      'sdpa',
    );
  });

  it('fp8 matmul (turbo-fp8) only from compute capability 8.9: the reason names the GPU and its capability', () => {
    const on = (gpu: string, capability: string) =>
      chooseEngineSettings({
        attention: 'auto',
        vram: 'auto',
        precision: 'fp8',
        report: { ...report({ sage: goodSage }), gpu, capability },
      }).fp8MatmulUnsupported;
    expect(on('NVIDIA H200', '9.0')).toBeUndefined();
    expect(on('NVIDIA L40S', '8.9')).toBeUndefined();
    expect(on('NVIDIA A100-SXM4-80GB', '8.0')).toBe(
      'NVIDIA A100-SXM4-80GB has compute capability 8.0; fp8 matrix multiplies need 8.9 or newer (Ada, Hopper)',
    );
    expect(on('NVIDIA RTX A6000', '8.6')).toContain('8.6');
    // No check (external ComfyUI): ComfyUI itself reports a card that cannot.
    expect(
      chooseEngineSettings({ attention: 'auto', vram: 'auto', precision: 'fp8', report: undefined }).fp8MatmulUnsupported,
    ).toBeUndefined();
  });

  it('ATTENTION_MODE=sdpa wins over a passing check', () => {
    expect(chooseEngineSettings({ attention: 'sdpa', vram: 'auto', precision: 'fp8', report: report({ sage: goodSage }) }).attention).toBe(
      'sdpa',
    );
  });

  it('keeps the model resident from the card size per precision, and follows VRAM_MODE', () => {
    const at = (memGiB: number, precision: 'fp8' | 'fp16' | 'gguf-q5_k_m', vram: 'auto' | 'high' | 'low' = 'auto') =>
      chooseEngineSettings({ attention: 'auto', vram, precision, report: report({ memGiB, sage: goodSage }) }).residentModel;
    expect(at(RESIDENT_MIN_GIB.fp8, 'fp8')).toBe(true);
    expect(at(RESIDENT_MIN_GIB.fp8 - 1, 'fp8')).toBe(false);
    expect(at(79.2, 'fp16')).toBe(true);
    expect(at(47.5, 'fp16')).toBe(false);
    expect(at(RESIDENT_MIN_GIB['gguf-q5_k_m'], 'gguf-q5_k_m')).toBe(true);
    expect(at(23.6, 'fp8', 'high')).toBe(true);
    expect(at(139.8, 'fp8', 'low')).toBe(false);
    expect(chooseEngineSettings({ attention: 'auto', vram: 'auto', precision: 'fp8', report: undefined }).residentModel).toBe(false);
  });

  it('plans for the process cap the check reports (STEADYDANCER_GPU_MEMORY_GB), not the whole card', () => {
    const capped = { ...report({ memGiB: 139.8, sage: goodSage }), memory_cap_bytes: Math.round(15.5 * GIB) };
    expect(cardMemoryGiB(capped)).toBeCloseTo(15.5, 5);
    const s = chooseEngineSettings({ attention: 'auto', vram: 'auto', precision: 'fp8', report: capped });
    expect(s).toMatchObject({ residentModel: false, memoryMode: 'low', blockSwap: 20 });
    expect(s.cardGiB).toBeCloseTo(15.5, 5);
    expect(s.reasons.join('\n')).toMatch(/block swap 20 of 40: 16 GB card class, fp8 \(measured: bench\/results\/gpu-turbo-81f-fp8-cap16/);
    expect(cardMemoryGiB(report({ memGiB: 23.6 }))).toBeCloseTo(23.6, 5);
    expect(cardMemoryGiB(undefined)).toBeUndefined();
  });

  it('carries the memory plan (block swap, VAE tiling) and the operator override into the settings', () => {
    const small = chooseEngineSettings({
      attention: 'sdpa',
      vram: 'auto',
      blockSwap: 6,
      precision: 'gguf-q4_k_m',
      report: report({ memGiB: 15.7 }),
    });
    expect(small).toMatchObject({ attention: 'sdpa', memoryMode: 'low', blockSwap: 6 });
    expect(small.vaeTilingAbovePixels).toBeGreaterThan(480 * 832);
    const big = chooseEngineSettings({ attention: 'sdpa', vram: 'auto', precision: 'fp8', report: report({ memGiB: 139.8 }) });
    expect(big).toMatchObject({ memoryMode: 'high', residentModel: true, blockSwap: 0, vaeTilingAbovePixels: null, compile: false });
  });

  it('compiles only when the operator asks (TORCH_COMPILE), on any card, and says so', () => {
    const choice = { attention: 'auto', vram: 'auto', precision: 'fp8', report: report({ memGiB: 15.7 }) } as const;
    const on = chooseEngineSettings({ ...choice, compile: true });
    expect(on).toMatchObject({ compile: true, residentModel: false });
    expect(on.reasons).toContain('torch.compile: on (TORCH_COMPILE)');
    expect(chooseEngineSettings(choice).reasons).toContain('torch.compile: off');
    expect(UNCHECKED_ENGINE.compile).toBe(false);
  });
});

describe('parseGpuReport', () => {
  it('reads the last JSON line of the script', () => {
    const line = JSON.stringify(report({ sage: goodSage }));
    const parsed = parseGpuReport(`warning: something\n${line}\n`);
    expect('report' in parsed && parsed.report.modes['sageattn']?.ok).toBe(true);
  });

  it('turns a failed check or a changed script into an error, not a report', () => {
    expect(parseGpuReport('{"ok": false, "error": "no CUDA device visible to PyTorch"}')).toEqual({
      error: 'no CUDA device visible to PyTorch',
    });
    expect(parseGpuReport('')).toEqual({ error: 'the check printed no report' });
    expect('error' in parseGpuReport('{"ok": true, "gpu": "x"}')).toBe(true);
  });

  it('reads the memory cap when the check ran under STEADYDANCER_GPU_MEMORY_GB', () => {
    const line = JSON.stringify({ ...report({ sage: goodSage }), memory_cap_bytes: 16642998272 });
    const parsed = parseGpuReport(line);
    expect('report' in parsed && parsed.report.memory_cap_bytes).toBe(16642998272);
  });
});
