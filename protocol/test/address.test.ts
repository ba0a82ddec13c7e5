// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatAddress, isParleyError, parseAddress } from '../src/index.js';

describe('addresses', () => {
  const good: Array<[string, string | undefined, string]> = [
    ['alice@example.org', undefined, 'alice@example.org'],
    ['Alice@Example.ORG', undefined, 'alice@example.org'],
    ['bob.smith_2@relay.example.org:8443', undefined, 'bob.smith_2@relay.example.org:8443'],
    ['carol@localhost', undefined, 'carol@localhost'],
    ['dave@127.0.0.1:7070', undefined, 'dave@127.0.0.1:7070'],
    ['erin', 'localhost', 'erin@localhost'],
  ];
  for (const [text, def, canonical] of good) {
    it(`parses ${text}`, () => assert.equal(formatAddress(parseAddress(text, def)), canonical));
  }
  const bad = [
    'alice', '@example.org', 'alice@', 'al@example.org', 'a'.repeat(33) + '@x.org', '1alice@x.org', 'al..ice@x.org',
    'alice.@x.org', 'ali ce@x.org', 'alice@x@y.org', 'alice@-x.org', 'alice@x..org', 'alice@x.org:0', 'alice@x.org:65536',
    'alice@x.org:', 'alice@256.1.1.1', 'alice@x.org/path', 'alicé@x.org',
  ];
  for (const text of bad) {
    it(`refuses ${JSON.stringify(text)} with BAD_REQUEST`, () => {
      assert.throws(() => parseAddress(text), (err) => isParleyError(err, 'BAD_REQUEST'));
    });
  }
});
