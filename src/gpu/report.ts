// The one-line JSON report of docker/attention_check.py: what card this is and whether each attention
// backend computes attention. Parsed, never cast: a changed script fails here, not later.
import { z } from 'zod';

const ModeResult = z.object({
  ok: z.boolean(),
  cosine: z.number().nullable().optional(),
  rel_l2: z.number().nullable().optional(),
  error: z.string().optional(),
  bench_ms: z.number().optional(),
});

export const GpuReportSchema = z.object({
  ok: z.literal(true),
  gpu: z.string(),
  capability: z.string(),
  total_memory_bytes: z.number().int().positive(),
  /** Present when STEADYDANCER_GPU_MEMORY_GB caps the process: the memory it may use, in bytes. */
  memory_cap_bytes: z.number().int().positive().optional(),
  torch: z.string(),
  sageattention: z.string().nullable().optional(),
  modes: z.record(z.string(), ModeResult),
  seconds: z.number().optional(),
});

export type GpuReport = z.infer<typeof GpuReportSchema>;
export type ModeCheck = z.infer<typeof ModeResult>;

/** The report in the script's output (its last JSON line), or why there is none. */
export function parseGpuReport(stdout: string): { report: GpuReport } | { error: string } {
  const line = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) return { error: 'the check printed no report' };
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { error: 'the check printed a report that is not JSON' };
  }
  if (json && typeof json === 'object' && (json as { ok?: unknown }).ok === false) {
    return { error: String((json as { error?: unknown }).error ?? 'the check failed') };
  }
  const parsed = GpuReportSchema.safeParse(json);
  return parsed.success ? { report: parsed.data } : { error: `unexpected report: ${parsed.error.issues[0]?.message ?? ''}` };
}
