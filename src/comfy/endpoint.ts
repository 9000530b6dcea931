/** Where a ready ComfyUI answers. The directories are known when we spawned it (same container):
 * outputs are then read from disk; for an external ComfyUI (COMFYUI_URL) they are streamed from /view. */
export interface ComfyEndpoint {
  baseUrl: string;
  inputDir?: string;
  outputDir?: string;
  tempDir?: string;
}
