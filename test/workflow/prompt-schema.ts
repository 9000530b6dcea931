// Test tool: checks an API prompt against ComfyUI's /object_info the way ComfyUI's own validation does
// (execution.py validate_inputs), so a template can be checked without a running ComfyUI:
// class exists, required inputs present, literal types / combo values / min-max, links to an
// existing output of a matching type. Stricter in one way: inputs a class does not declare are
// reported (a typo'd input name is silently ignored by ComfyUI).
import { isNodeLink, type ApiPrompt } from '../../src/workflow/types';

/** One class's entry of GET /object_info (the parts we check). */
export interface NodeClassInfo {
  input: {
    required?: Record<string, InputSpec>;
    optional?: Record<string, InputSpec>;
    hidden?: Record<string, unknown>;
  };
  output: (string | string[])[];
  output_name?: string[];
}
/** `[type]` or `[type, options]`; a combo's type is its list of values (or "COMBO" + options.options). */
export type InputSpec = [string | unknown[], Record<string, unknown>?] | unknown[];
export type ObjectInfo = Record<string, NodeClassInfo>;

export interface SchemaProblem {
  node: string;
  classType: string;
  input?: string;
  message: string;
}

export interface SchemaCheckOptions {
  /**
   * Inputs whose combo list is a folder listing that the class checks itself (VALIDATE_INPUTS),
   * e.g. LoadImage.image: any non-empty string passes, as in ComfyUI.
   */
  fileInputs?: Record<string, string[]>;
}

/** Inputs ComfyUI validates with the node's own VALIDATE_INPUTS instead of its combo list. */
export const FILE_INPUTS: Record<string, string[]> = {
  LoadImage: ['image'],
  VHS_LoadVideo: ['video'],
};

function comboValues(spec: InputSpec): unknown[] | undefined {
  const [type, opts] = spec as [unknown, Record<string, unknown> | undefined];
  if (Array.isArray(type)) return type;
  if (type === 'COMBO' && Array.isArray(opts?.options)) return opts.options as unknown[];
  return undefined;
}

function typeName(spec: InputSpec): string {
  const values = comboValues(spec);
  return values ? 'COMBO' : String(spec[0]);
}

// ComfyUI's validate_node_input: "*" matches anything; types may be comma-separated unions.
function typesMatch(received: string, expected: string): boolean {
  if (received === '*' || expected === '*' || received === expected) return true;
  const a = new Set(received.split(','));
  return expected.split(',').some((t) => a.has(t));
}

function checkLiteral(name: string, value: unknown, spec: InputSpec): string | undefined {
  const opts = (spec[1] ?? {}) as Record<string, unknown>;
  const values = comboValues(spec);
  if (values) {
    return values.includes(value) ? undefined : `value ${JSON.stringify(value)} not in the list for ${name}`;
  }
  const type = String(spec[0]);
  const inRange = (n: number): string | undefined => {
    if (typeof opts.min === 'number' && n < opts.min) return `${name} ${n} is smaller than min ${opts.min}`;
    if (typeof opts.max === 'number' && n > opts.max) return `${name} ${n} is bigger than max ${opts.max}`;
    return undefined;
  };
  switch (type) {
    case 'INT':
      return typeof value === 'number' && Number.isInteger(value) ? inRange(value) : `${name} must be an integer`;
    case 'FLOAT':
      return typeof value === 'number' && Number.isFinite(value) ? inRange(value) : `${name} must be a number`;
    case 'BOOLEAN':
      return typeof value === 'boolean' ? undefined : `${name} must be a boolean`;
    case 'STRING':
      return typeof value === 'string' ? undefined : `${name} must be a string`;
    default:
      return `${name} takes a ${type} link, not a literal value`;
  }
}

/**
 * Extra inputs a combo value brings along: VideoHelperSuite's format widgets, declared as
 * options.formats[<value>] = [[name, type, opts?], ...] (e.g. pix_fmt, crf for video/h264-mp4).
 */
function formatWidgets(info: NodeClassInfo, inputs: Record<string, unknown>): Record<string, InputSpec> {
  const widgets: Record<string, InputSpec> = {};
  const all = { ...info.input.required, ...info.input.optional };
  for (const [name, spec] of Object.entries(all)) {
    const formats = (spec[1] as Record<string, unknown> | undefined)?.formats as Record<string, unknown> | undefined;
    const selected = formats?.[String(inputs[name])];
    if (!Array.isArray(selected)) continue;
    for (const widget of selected as unknown[][]) {
      const [widgetName, ...widgetSpec] = widget;
      widgets[String(widgetName)] = widgetSpec as InputSpec;
    }
  }
  return widgets;
}

export function checkPromptSchema(prompt: ApiPrompt, objectInfo: ObjectInfo, options: SchemaCheckOptions = {}): SchemaProblem[] {
  const fileInputs = options.fileInputs ?? FILE_INPUTS;
  const problems: SchemaProblem[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    const classType = node.class_type;
    const report = (message: string, input?: string) => problems.push({ node: id, classType, message, ...(input ? { input } : {}) });
    const info = objectInfo[classType];
    if (!info) {
      report(`node class ${classType} is not installed`);
      continue;
    }
    const widgets = formatWidgets(info, node.inputs);
    const required = { ...info.input.required, ...widgets };
    const declared: Record<string, InputSpec> = { ...info.input.optional, ...required };
    for (const name of Object.keys(required)) {
      if (!(name in node.inputs)) report(`required input ${name} is missing`, name);
    }
    for (const [name, value] of Object.entries(node.inputs)) {
      const spec = declared[name];
      if (!spec) {
        report(`${classType} has no input ${name}`, name);
        continue;
      }
      if (isNodeLink(value)) {
        const [sourceId, index] = value;
        const source = prompt[sourceId];
        const sourceInfo = source ? objectInfo[source.class_type] : undefined;
        if (!source) {
          report(`${name} links to node ${sourceId}, which does not exist`, name);
          continue;
        }
        if (!sourceInfo) continue; // its unknown class is reported on that node
        const outType = sourceInfo.output[index];
        if (outType === undefined) {
          report(`${name} links to output ${index} of node ${sourceId}, which has ${sourceInfo.output.length} outputs`, name);
          continue;
        }
        const received = Array.isArray(outType) ? 'COMBO' : outType;
        if (!typesMatch(received, typeName(spec))) {
          report(`${name} expects ${typeName(spec)} but node ${sourceId} output ${index} is ${received}`, name);
        }
        continue;
      }
      if (fileInputs[classType]?.includes(name)) {
        if (typeof value !== 'string' || value === '') report(`${name} must be a file name`, name);
        continue;
      }
      const problem = checkLiteral(name, value, spec);
      if (problem) report(problem, name);
    }
  }
  return problems;
}
