// ComfyUI's error codes, and its failures → WorkerErrors, keeping the real reason (node id/type, input, exception).
import { codedErrors, type WorkerError } from '../lib/errors';
import type { ExecutionErrorData, NodeErrors, PromptRejected } from './messages';

export const COMFY_ERROR_CODES = [
  'WORKFLOW_REJECTED', // ComfyUI refused the prompt (validation, missing node)
  'COMFY_UNAVAILABLE', // ComfyUI did not start or is unreachable
  'COMFY_CRASHED', // ComfyUI died while the prompt ran
  'OUT_OF_MEMORY', // CUDA / torch out of memory
  'EXECUTION_FAILED', // a node raised during execution
  'OUTPUT_MISSING', // the prompt finished but an output file is not there
  'INVALID_INPUT', // an input file ComfyUI cannot take
  'TIMEOUT', // the call's own deadline passed
  'CANCELLED', // the caller aborted
  'INTERNAL', // an answer this client cannot read, or a bug
] as const;

export type ComfyErrorCode = (typeof COMFY_ERROR_CODES)[number];

export const comfyError = codedErrors(COMFY_ERROR_CODES);

const OOM_TYPE = /OutOfMemoryError/;
const OOM_MESSAGE = /out of memory|Allocation on device|ran out of memory/i;

export function isOutOfMemory(e: ExecutionErrorData): boolean {
  return OOM_TYPE.test(e.exception_type ?? '') || OOM_MESSAGE.test(e.exception_message ?? '');
}

/** One line per failing input: `node 37 (UNETLoader) input unet_name: Value not in list: unet_name: 'x' not in (…)`. */
export function describeNodeErrors(nodeErrors: NodeErrors): { text: string; nodes: Record<string, unknown>[] } {
  const nodes: Record<string, unknown>[] = [];
  const lines: string[] = [];
  for (const [nodeId, ne] of Object.entries(nodeErrors)) {
    for (const e of ne.errors) {
      const input = e.extra_info?.input_name;
      nodes.push({
        nodeId,
        classType: ne.class_type,
        type: e.type,
        input,
        receivedValue: e.extra_info?.received_value,
        message: e.message,
        details: e.details,
      });
      lines.push(
        `node ${nodeId}${ne.class_type ? ` (${ne.class_type})` : ''}${input ? ` input "${input}"` : ''}: ${e.message}${e.details ? ` (${e.details})` : ''}`,
      );
    }
  }
  return { text: lines.join('; '), nodes };
}

/** A 400 from POST /prompt. */
export function promptRejectedError(body: PromptRejected): WorkerError {
  const { error } = body;
  const { text, nodes } = describeNodeErrors(body.node_errors);
  const extra = error.extra_info;
  // missing_node_type (newer builds) names the class in extra_info; 0.3.64 says
  // "Cannot execute because node X does not exist." under type invalid_prompt.
  const missingClass =
    (typeof extra.class_type === 'string' ? extra.class_type : undefined) ?? /node (\S+) does not exist/.exec(error.message)?.[1];
  const hint = missingClass
    ? ` Node type "${missingClass}" is not installed in ComfyUI: install its custom node pack or fix the workflow.`
    : '';
  const message = `ComfyUI rejected the workflow (${error.type}): ${error.message}${error.details ? ` ${error.details}` : ''}${text ? ` — ${text}` : ''}.${hint}`;
  return comfyError('WORKFLOW_REJECTED', message, {
    details: { errorType: error.type, ...(missingClass ? { missingNodeType: missingClass } : {}), nodeErrors: nodes },
  });
}

/** A 200 from POST /prompt that still lists node_errors: some outputs would be silently skipped. */
export function partiallyRejectedError(nodeErrors: NodeErrors): WorkerError {
  const { text, nodes } = describeNodeErrors(nodeErrors);
  return comfyError('WORKFLOW_REJECTED', `ComfyUI would skip part of the workflow: ${text}. Fix those nodes' inputs.`, {
    details: { errorType: 'node_errors_on_accept', nodeErrors: nodes },
  });
}

/** An execution_error payload (from the socket or history). */
export function executionError(e: ExecutionErrorData): WorkerError {
  const where = `node ${e.node_id ?? '?'}${e.node_type ? ` (${e.node_type})` : ''}`;
  const firstLine = (e.exception_message ?? '').split('\n')[0]?.trim() ?? '';
  const details = { nodeId: e.node_id, nodeType: e.node_type, exceptionType: e.exception_type, exceptionMessage: e.exception_message };
  if (isOutOfMemory(e)) {
    // `summary` without the generic advice: the job replaces the advice with one for its own settings.
    const summary = `Out of GPU memory in ${where}: ${firstLine}.`;
    return comfyError('OUT_OF_MEMORY', `${summary} Use a smaller size or fewer frames, or a GPU with more memory.`, {
      details: { ...details, summary },
    });
  }
  return comfyError('EXECUTION_FAILED', `${where} failed: ${e.exception_type ?? 'Error'}: ${firstLine}`, { details });
}
