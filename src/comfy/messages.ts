// ComfyUI's wire shapes (POST /prompt answers, websocket frames, /history entries), parsed rather
// than cast: an answer of a shape this worker cannot read fails the job instead of being misread.
import { z } from 'zod';

const promptId = z.string();

/** Websocket text frames we act on; anything else (progress_state, feature_flags, …) is ignored. */
export const SocketMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status'), data: z.object({ status: z.unknown().optional(), sid: z.string().optional() }).loose() }),
  z.object({ type: z.literal('execution_start'), data: z.object({ prompt_id: promptId }).loose() }),
  z.object({ type: z.literal('execution_cached'), data: z.object({ prompt_id: promptId, nodes: z.array(z.string()) }).loose() }),
  z.object({
    type: z.literal('executing'),
    // `prompt_id` is absent in the "current node" message a reconnecting socket receives
    data: z.object({ node: z.string().nullable(), prompt_id: promptId.optional() }).loose(),
  }),
  z.object({
    type: z.literal('progress'),
    data: z.object({ value: z.number(), max: z.number(), prompt_id: promptId.optional(), node: z.string().nullish() }).loose(),
  }),
  z.object({ type: z.literal('executed'), data: z.object({ node: z.string(), prompt_id: promptId }).loose() }),
  z.object({ type: z.literal('execution_success'), data: z.object({ prompt_id: promptId }).loose() }),
  z.object({ type: z.literal('execution_error'), data: z.object({ prompt_id: promptId }).loose() }),
  z.object({ type: z.literal('execution_interrupted'), data: z.object({ prompt_id: promptId }).loose() }),
]);
export type SocketMessage = z.infer<typeof SocketMessageSchema>;

/** Parses one text frame; null for unknown types or malformed JSON. */
export function parseSocketMessage(text: string): SocketMessage | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = SocketMessageSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

export const ExecutionErrorSchema = z
  .object({
    prompt_id: z.string().optional(),
    node_id: z.union([z.string(), z.number()]).transform(String).optional(),
    node_type: z.string().optional(),
    exception_message: z.string().optional(),
    exception_type: z.string().optional(),
    traceback: z.array(z.string()).optional(),
  })
  .loose();
export type ExecutionErrorData = z.infer<typeof ExecutionErrorSchema>;

export const HistoryEntrySchema = z
  .object({
    outputs: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
    status: z
      .object({
        status_str: z.string(),
        completed: z.boolean(),
        messages: z.array(z.tuple([z.string(), z.unknown()])).default([]),
      })
      .loose()
      .optional(),
  })
  .loose();
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;

/** `/history/{id}`: `{}` until the prompt finished, then `{ [id]: entry }`. */
export const HistoryResponseSchema = z.record(z.string(), HistoryEntrySchema);

const NodeErrorSchema = z
  .object({
    errors: z
      .array(
        z
          .object({
            type: z.string(),
            message: z.string().default(''),
            details: z.string().default(''),
            extra_info: z.object({ input_name: z.string().optional(), received_value: z.unknown().optional() }).loose().optional(),
          })
          .loose(),
      )
      .default([]),
    class_type: z.string().optional(),
  })
  .loose();
export type NodeErrors = Record<string, z.infer<typeof NodeErrorSchema>>;

export const PromptAcceptedSchema = z.object({
  prompt_id: z.string(),
  number: z.number().optional(),
  node_errors: z.record(z.string(), NodeErrorSchema).default({}),
});

export type PromptAccepted = z.infer<typeof PromptAcceptedSchema>;

export const PromptRejectedSchema = z.object({
  error: z.union([
    z
      .object({
        type: z.string(),
        message: z.string().default(''),
        details: z.string().default(''),
        extra_info: z.record(z.string(), z.unknown()).default({}),
      })
      .loose(),
    // very old builds answered a bare string
    z.string().transform((message) => ({ type: 'unknown', message, details: '', extra_info: {} as Record<string, unknown> })),
  ]),
  node_errors: z.record(z.string(), NodeErrorSchema).default({}),
});
export type PromptRejected = z.infer<typeof PromptRejectedSchema>;

export const QueueSchema = z.object({
  queue_running: z.array(z.array(z.unknown())).default([]),
  queue_pending: z.array(z.array(z.unknown())).default([]),
});

export const UploadResponseSchema = z.object({ name: z.string(), subfolder: z.string().default(''), type: z.string().default('input') });
