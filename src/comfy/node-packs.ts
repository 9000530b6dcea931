// Missing node classes → which custom-node pack provides each and how to install it, so a broken image
// or a bare ComfyUI at COMFYUI_URL gets a fix, not just a list of class names.

/** A custom-node pack at a pinned commit and the node classes it provides. */
export interface NodePack {
  readonly name: string;
  readonly repo: string;
  readonly commit: string;
  readonly classes: readonly string[];
}

/** Where the advice points: the ComfyUI we start (its folder and Python are known) or one at COMFYUI_URL. */
export interface InstallTarget {
  readonly comfyDir?: string;
  readonly python?: string;
}

export interface MissingClassesReport {
  message: string;
  /** The packs to install, each with the missing classes it provides. */
  packs: { name: string; repo: string; commit: string; classes: string[] }[];
  /** Classes no known pack provides (core nodes of a newer ComfyUI, or a pack this worker does not list). */
  unknown: string[];
}

export function describeMissingClasses(
  missing: readonly string[],
  packs: readonly NodePack[],
  target: InstallTarget,
): MissingClassesReport {
  const needed = new Map<NodePack, string[]>();
  const unknown: string[] = [];
  for (const cls of missing) {
    const pack = packs.find((p) => p.classes.includes(cls));
    if (!pack) unknown.push(cls);
    else needed.set(pack, [...(needed.get(pack) ?? []), cls]);
  }
  const nodesDir = target.comfyDir ? `${target.comfyDir.replace(/\/+$/, '')}/custom_nodes` : '<ComfyUI folder>/custom_nodes';
  const pip = `${target.python ?? 'python'} -m pip`;
  const lines = [
    `ComfyUI started without the node classes ${missing.join(', ')}: their custom node packs are missing or failed to import ` +
      `(ComfyUI's start-up log marks a pack that failed with "IMPORT FAILED" and prints the reason above it).`,
  ];
  if (needed.size > 0) lines.push('Install each pack at its pinned commit, then restart ComfyUI:');
  for (const [pack, classes] of needed) {
    lines.push(
      `  ${pack.name} (${classes.join(', ')}): cd ${nodesDir} && git clone ${pack.repo} ${pack.name} && ` +
        `git -C ${pack.name} checkout ${pack.commit} && ${pip} install -r ${pack.name}/requirements.txt`,
    );
  }
  if (unknown.length > 0) {
    lines.push(
      `  ${unknown.join(', ')}: no listed custom node pack provides ${unknown.length === 1 ? 'it' : 'them'}; a core node this ComfyUI lacks? Run the ComfyUI version the worker pins.`,
    );
  }
  return {
    message: lines.join('\n'),
    packs: [...needed].map(([p, classes]) => ({ name: p.name, repo: p.repo, commit: p.commit, classes })),
    unknown,
  };
}
