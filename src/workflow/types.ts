// Shapes of ComfyUI's API-format prompt ("Save (API)" JSON / POST /prompt `prompt`).

/** A link to another node's output: [source node id, output index]. */
export type NodeLink = [string, number];

export interface ApiNode {
  class_type: string;
  inputs: Record<string, unknown>;
  /** UI title; ComfyUI ignores it, reviewers read it. */
  _meta?: { title?: string };
}

/** Node id → node. */
export type ApiPrompt = Record<string, ApiNode>;

export function isNodeLink(value: unknown): value is NodeLink {
  return (
    Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'number' && Number.isInteger(value[1])
  );
}
