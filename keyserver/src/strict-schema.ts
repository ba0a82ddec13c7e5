// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A strict validator for the JSON Schema subset the key server's routes use, installed as the
 * fastify validator compiler of the key server's own routes.
 *
 * Why not fastify's default (Ajv)? The key server mounts on a fastify instance the relay creates,
 * and fastify's default Ajv options coerce types (`"5"` becomes 5) and *remove* properties that
 * `additionalProperties: false` forbids instead of refusing them. A key server must refuse
 * unknown fields and wrong types, whatever options the host instance was built with. The subset
 * is small, and any keyword outside it is refused when a route is registered, so a schema can
 * never silently promise a check that is not made.
 *
 * Error messages name the field path and the rule, never the value.
 */
import { ParleyError } from '@parley/protocol';

/** A schema in the supported subset. */
export interface StrictSchema {
  readonly type: SchemaType | readonly SchemaType[];
  readonly description?: string;
  /** Objects: the known properties. */
  readonly properties?: Readonly<Record<string, StrictSchema>>;
  /** Objects: properties that must be present. */
  readonly required?: readonly string[];
  /** Objects: only `false` is supported (refuse unknown properties); absent allows them. */
  readonly additionalProperties?: false;
  /** Strings: bounds in UTF-16 code units (the fields are ASCII). */
  readonly minLength?: number;
  readonly maxLength?: number;
  /** Strings: a regular expression the whole value must match (anchor it). */
  readonly pattern?: string;
  /** Integers: inclusive bounds. */
  readonly minimum?: number;
  readonly maximum?: number;
  /** Arrays: the schema of every item, and length bounds. */
  readonly items?: StrictSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
}

/** The types of the subset. */
export type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'boolean' | 'null';

const KEYWORDS = new Set([
  'type',
  'description',
  'properties',
  'required',
  'additionalProperties',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'items',
  'minItems',
  'maxItems',
]);
const TYPES = new Set<string>(['object', 'array', 'string', 'integer', 'boolean', 'null']);

type Check = (value: unknown, path: string) => string | undefined;

function typeOf(value: unknown): SchemaType | 'number' | 'other' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return Number.isInteger(value) ? 'integer' : 'number';
    case 'object':
      return 'object';
    default:
      return 'other';
  }
}

function compileNode(schema: unknown, where: string): Check {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new TypeError(`schema at ${where} must be an object`);
  }
  for (const key of Object.keys(schema)) {
    if (!KEYWORDS.has(key)) throw new TypeError(`schema keyword ${key} at ${where} is not supported`);
  }
  const s = schema as StrictSchema;
  const types = Array.isArray(s.type) ? (s.type as SchemaType[]) : [s.type as SchemaType];
  if (types.length === 0 || types.some((t) => !TYPES.has(t))) throw new TypeError(`schema at ${where} has an unsupported type`);
  if (s.additionalProperties !== undefined && s.additionalProperties !== false) {
    throw new TypeError(`schema at ${where}: additionalProperties must be false or absent`);
  }
  const properties = new Map<string, Check>();
  for (const [name, sub] of Object.entries(s.properties ?? {})) properties.set(name, compileNode(sub, `${where}/${name}`));
  for (const name of s.required ?? []) {
    if (!properties.has(name)) throw new TypeError(`schema at ${where} requires ${name} but does not describe it`);
  }
  const items = s.items === undefined ? undefined : compileNode(s.items, `${where}/items`);
  const pattern = s.pattern === undefined ? undefined : new RegExp(s.pattern, 'u');
  const typeText = types.join(' or ');

  return (value, path) => {
    const actual = typeOf(value);
    if (!types.includes(actual as SchemaType)) return `${path} must be ${typeText}`;
    switch (actual) {
      case 'object': {
        const obj = value as Record<string, unknown>;
        for (const name of s.required ?? []) {
          if (!Object.hasOwn(obj, name)) return `${path} must have ${name}`;
        }
        for (const key of Object.keys(obj)) {
          const check = properties.get(key);
          if (!check) {
            if (s.additionalProperties === false) return `${path} has an unknown property`;
            continue;
          }
          const err = check(obj[key], `${path}/${key}`);
          if (err) return err;
        }
        return undefined;
      }
      case 'array': {
        const arr = value as unknown[];
        if (s.minItems !== undefined && arr.length < s.minItems) return `${path} must have at least ${s.minItems} items`;
        if (s.maxItems !== undefined && arr.length > s.maxItems) return `${path} must have at most ${s.maxItems} items`;
        if (items) {
          for (let i = 0; i < arr.length; i++) {
            const err = items(arr[i], `${path}/${i}`);
            if (err) return err;
          }
        }
        return undefined;
      }
      case 'string': {
        const str = value as string;
        if (s.minLength !== undefined && str.length < s.minLength) return `${path} must be at least ${s.minLength} characters`;
        if (s.maxLength !== undefined && str.length > s.maxLength) return `${path} must be at most ${s.maxLength} characters`;
        if (pattern && !pattern.test(str)) return `${path} has an invalid format`;
        return undefined;
      }
      case 'integer': {
        const n = value as number;
        if ((s.minimum !== undefined && n < s.minimum) || (s.maximum !== undefined && n > s.maximum)) {
          return `${path} must be an integer from ${s.minimum ?? '-∞'} to ${s.maximum ?? '∞'}`;
        }
        return undefined;
      }
      default:
        return undefined;
    }
  };
}

/** A compiled validator: undefined when `value` is valid, else a message naming the field. */
export type StrictValidator = (value: unknown) => string | undefined;

/**
 * Compiles `schema`; `root` names the validated part in messages (e.g. `body`).
 * @throws TypeError when the schema uses anything outside the subset.
 */
export function compileStrictSchema(schema: unknown, root = 'value'): StrictValidator {
  const check = compileNode(schema, root);
  return (value) => check(value, root);
}

/**
 * A fastify validator compiler built on {@link compileStrictSchema}: failures become
 * `ParleyError('BAD_REQUEST')`, and the validated value is never modified.
 */
export function strictValidatorCompiler({ schema, httpPart }: { schema: unknown; httpPart?: string }): (data: unknown) => { error?: Error } {
  const validate = compileStrictSchema(schema, httpPart ?? 'value');
  return (data) => {
    const message = validate(data);
    return message === undefined ? {} : { error: new ParleyError('BAD_REQUEST', message) };
  };
}
