// Turns the steadydancer_runtime hook's JSON lines (docker/comfyui/steadydancer_runtime/timings.py)
// into per-prompt figures: node times, sampler seconds per step, PyTorch's peak allocation.
// Pure, so the CPU tests check it on recorded lines.

const SAMPLER = 'WanVideoSampler';

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x, d = 3) => (x === null || x === undefined ? x : Math.round(x * 10 ** d) / 10 ** d);

/**
 * One entry per prompt, in order; every step but a sampler's first gives the steady-state step time.
 * `profiledPrompt` (1-based) ran one step under the profiler: marked, and left out of that figure.
 */
export function summarizeTimings(text, expectedPrompts, profiledPrompt) {
  const records = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const prompts = [];
  let current = null;
  for (const r of records) {
    if (r.ev === 'prompt_start') {
      current = { prompt_id: r.prompt_id, t0: r.t, nodes: [], progress: [] };
      prompts.push(current);
    } else if (!current) {
      continue;
    } else if (r.ev === 'node') {
      current.nodes.push({ node: r.node, class: r.class, s: round(r.t1 - r.t0), cached: r.cached, t1: r.t1 });
    } else if (r.ev === 'progress') {
      current.progress.push(r);
    } else if (r.ev === 'prompt_end') {
      current.seconds = round(r.t - current.t0);
      current.peak_vram_bytes_torch = r.peak_bytes;
      current.peak_reserved_bytes_torch = r.peak_reserved_bytes;
    }
  }
  const perPrompt = prompts.map((p, index) => {
    const sampler = p.nodes.find((n) => n.class === SAMPLER);
    const samplerId = sampler?.node;
    // Step k ends at the k-th update of the sampler's own progress bar; step 1 starts when the node
    // starts (its end minus its duration).
    // The wrapper's sampler bar may carry no node id: take the bar updates inside the node's run.
    const samplerT0 = sampler ? sampler.t1 - sampler.s : null;
    const updates = p.progress.filter(
      (e) => e.value > 0 && (e.node === samplerId || (e.node == null && sampler && e.t >= samplerT0 && e.t <= sampler.t1)),
    );
    // Other bars run inside the sampler first (LoRA patching): the denoising bar is the last one.
    let bar = [];
    for (const u of updates) {
      if (bar.length === 0 || u.value <= bar[bar.length - 1].value || u.total !== bar[0].total) {
        if (bar.length === 0 || u.value !== bar[bar.length - 1].value) bar = u.value === 1 ? [u] : bar.length ? [] : [];
        if (bar.length === 0 && u.value === 1) bar = [u];
        continue;
      }
      bar.push(u);
    }
    const stepEnds = bar.map((u) => u.t);
    // Step 1 starts when the bar's first step starts: the previous bar's end, or the node's start.
    const firstStart = (() => {
      const before = updates.filter((u) => bar.length && u.t < bar[0].t);
      return before.length ? before[before.length - 1].t : samplerT0;
    })();
    const steps = stepEnds.map((t, i) => round(t - (i === 0 ? firstStart : stepEnds[i - 1])));
    return {
      seconds: p.seconds,
      peak_vram_gib_torch: p.peak_vram_bytes_torch ? round(p.peak_vram_bytes_torch / 1024 ** 3, 2) : null,
      peak_reserved_gib_torch: p.peak_reserved_bytes_torch ? round(p.peak_reserved_bytes_torch / 1024 ** 3, 2) : null,
      nodes: p.nodes.filter((n) => !n.cached).map(({ node, class: cls, s }) => ({ node, class: cls, s })),
      sampler: sampler ? { s: sampler.s, steps } : null,
      ...(index + 1 === profiledPrompt && { profiled: true }),
    };
  });
  const steady = perPrompt.flatMap((p) => (p.sampler && !p.profiled ? p.sampler.steps.slice(1) : []));
  return {
    prompts: perPrompt,
    prompts_complete: expectedPrompts === undefined ? undefined : perPrompt.length === expectedPrompts,
    sampler: { s_per_step_steady: round(median(steady)), steps_counted: steady.length },
  };
}
