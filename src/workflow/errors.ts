// The workflow module's error codes. A job value the builder refuses is the job's fault; a template,
// the model manifest or the engine settings not fitting the builder is the image's or the
// operator's, and each gets a code of its own so the message can say which file or setting to fix.
import { codedErrors } from '../lib/errors';

export const WORKFLOW_ERROR_CODES = [
  'INVALID_INPUT', // a job value outside the variant's bounds; `details.field` names it
  'TEMPLATE_INVALID', // a variant's template (workflows/<variant>.json) lacks a node the builder fills
  'MANIFEST_INVALID', // workflows/models.json lists no diffusion model for the image's precision
  'CONFIG_INVALID', // an engine setting (block swap) outside what the model allows
] as const;

export type WorkflowErrorCode = (typeof WORKFLOW_ERROR_CODES)[number];

export const workflowError = codedErrors(WORKFLOW_ERROR_CODES);
