// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileStrictSchema, type StrictSchema } from '../src/index.js';

const schema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    id: { type: 'integer', minimum: 1, maximum: 10 },
    name: { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]*$' },
    tags: { type: 'array', maxItems: 2, items: { type: 'object', additionalProperties: false, required: ['k'], properties: { k: { type: 'string' } } } },
    free: { type: 'object' },
    maybe: { type: ['string', 'null'] },
  },
};
const validate = compileStrictSchema(schema, 'body');

describe('strict schema validator', () => {
  it('accepts valid values without changing them', () => {
    const value = { id: 3, name: 'abc', tags: [{ k: 'x' }], free: { anything: 1 }, maybe: null };
    const copy = structuredClone(value);
    assert.equal(validate(value), undefined);
    assert.deepEqual(value, copy);
  });

  const refusals: Array<[string, unknown, RegExp]> = [
    ['a non-object', [], /^body must be object$/],
    ['null', null, /^body must be object$/],
    ['a missing property', { id: 1 }, /^body must have name$/],
    ['an unknown property', { id: 1, name: 'ab', admin: true }, /^body has an unknown property$/],
    ['a numeric string (no coercion)', { id: '3', name: 'ab' }, /^body\/id must be integer$/],
    ['a fraction', { id: 1.5, name: 'ab' }, /^body\/id must be integer$/],
    ['NaN-like values', { id: Number.NaN, name: 'ab' }, /^body\/id must be integer$/],
    ['an integer below the minimum', { id: 0, name: 'ab' }, /^body\/id must be an integer from 1 to 10$/],
    ['an integer above the maximum', { id: 11, name: 'ab' }, /^body\/id must be an integer from 1 to 10$/],
    ['a short string', { id: 1, name: 'a' }, /at least 2/],
    ['a long string', { id: 1, name: 'abcde' }, /at most 4/],
    ['a pattern mismatch', { id: 1, name: 'AB' }, /^body\/name has an invalid format$/],
    ['too many items', { id: 1, name: 'ab', tags: [{ k: 'a' }, { k: 'b' }, { k: 'c' }] }, /at most 2 items/],
    ['a bad nested item', { id: 1, name: 'ab', tags: [{ k: 'a' }, { k: 1 }] }, /^body\/tags\/1\/k must be string$/],
    ['an unknown nested property', { id: 1, name: 'ab', tags: [{ k: 'a', z: 1 }] }, /^body\/tags\/0 has an unknown property$/],
    ['a boolean for a string-or-null', { id: 1, name: 'ab', maybe: true }, /must be string or null/],
  ];
  for (const [name, value, message] of refusals) {
    it(`refuses ${name}`, () => {
      const err = validate(value);
      assert.ok(err, 'accepted');
      assert.match(err, message);
    });
  }

  it('never puts the value into a message', () => {
    const err = validate({ id: 1, name: 'SECRETVALUE' });
    assert.ok(err && !err.includes('SECRETVALUE'));
  });

  it('refuses a schema outside the subset when it is compiled', () => {
    assert.throws(() => compileStrictSchema({ type: 'string', format: 'uuid' }), /format/);
    assert.throws(() => compileStrictSchema({ type: 'number' }), /unsupported type/);
    assert.throws(() => compileStrictSchema({ type: 'object', additionalProperties: true }), /additionalProperties/);
    assert.throws(() => compileStrictSchema({ type: 'object', required: ['x'] }), /requires x/);
    assert.throws(() => compileStrictSchema({ type: 'object', properties: { x: { type: 'string', oneOf: [] } } }), /oneOf at value\/x/);
  });
});
