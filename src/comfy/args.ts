// The ComfyUI command line for a headless worker (reference §7; flags checked against 0.3.64's cli_args.py).
import path from 'node:path';

export interface ComfyLayout {
  inputDir: string;
  outputDir: string;
  tempDir: string;
}

/** Per-worker folders under workDir, so cleanup never touches another process's files. */
export function comfyLayout(workDir: string): ComfyLayout {
  const root = path.join(workDir, 'comfyui');
  return { inputDir: path.join(root, 'input'), outputDir: path.join(root, 'output'), tempDir: path.join(root, 'temp') };
}

export function comfyArgs(opts: {
  port: number;
  layout: ComfyLayout;
  /** Passed only when the file exists (ComfyUI also reads <dir>/extra_model_paths.yaml by itself). */
  extraModelPathsConfig: string | undefined;
  extraArgs: readonly string[];
}): string[] {
  return [
    'main.py',
    '--listen',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--disable-auto-launch',
    '--disable-metadata',
    '--preview-method',
    'none',
    '--input-directory',
    opts.layout.inputDir,
    '--output-directory',
    opts.layout.outputDir,
    '--temp-directory',
    opts.layout.tempDir,
    ...(opts.extraModelPathsConfig ? ['--extra-model-paths-config', opts.extraModelPathsConfig] : []),
    ...opts.extraArgs,
  ];
}
