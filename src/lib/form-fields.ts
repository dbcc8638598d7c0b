import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Static, TObject } from 'typebox';
import { validationError } from '../errors.js';
import { validationDetails } from '../plugins/errors.js';

// Multipart text fields arrive as strings: the same JSON Schema as a JSON body, validated with type
// coercion (the one place besides query strings where everything is text), by Ajv as Fastify does.
const ajv = new Ajv({ coerceTypes: 'array', allErrors: true, removeAdditional: false, useDefaults: true });
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
addFormats(ajv);

/** An array field sent as text: JSON (`[1,2]`) or comma-separated (`1,2`). Left as is when it is neither, for the schema to refuse. */
function splitList(text: string): unknown {
  const raw = text.trim();
  if (!raw.startsWith('[')) return raw.split(',').map((s) => s.trim());
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return text;
  }
}

/**
 * A compiled check of a form's text fields against `schema`: the typed values, or a 400 whose
 * details name each invalid field, in the same shape as a JSON body's.
 */
export function formFields<T extends TObject>(schema: T): (fields: Record<string, string>) => Static<T> {
  // Compiled on the first form, not when the routes load: 50–100 ms of start-up (figure 6) for a check that only
  // uploads need, and they pay far more for the image itself.
  let validate: ReturnType<typeof ajv.compile> | undefined;
  const lists = Object.entries(schema.properties)
    .filter(([, s]) => (s as { type?: unknown }).type === 'array')
    .map(([name]) => name);
  return (fields) => {
    const values: Record<string, unknown> = { ...fields };
    for (const name of lists) if (typeof values[name] === 'string') values[name] = splitList(values[name] as string);
    validate ??= ajv.compile(schema);
    if (!validate(values)) {
      const details = validationDetails(validate.errors ?? []);
      throw validationError(`Some fields are invalid: ${Object.keys(details).join(', ')}. See details.`, details);
    }
    return values as Static<T>;
  };
}
