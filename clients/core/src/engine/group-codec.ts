// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Group changes between the wire (`GroupChange` inside a `GroupUpdate`, content.proto), the
 * engine's records (group-state.ts) and the store (JSON). Everything that comes from outside
 * passes {@link checkGroupChange}; a change that does not is dropped by the caller, never
 * stored.
 */
import { aciFromBytes, aciToBytes, fromHex, toHex, type Aci, type Content } from '@parley/protocol';
import { ClientError } from '../errors.js';
import { checkGroupChange, GROUP_LIMITS, type GroupChange, type GroupChangeKind, type GroupMemberRef } from './group-state.js';
import type { ContentInit } from './content-codec.js';

/** The `GroupUpdate` message as decoded. */
export type WireGroupUpdate = Extract<Content['body'], { case: 'groupUpdate' }>['value'];
/** One decoded `GroupChange`. */
export type WireGroupChange = WireGroupUpdate['changes'][number];
type WireMembers = Extract<WireGroupChange['kind'], { case: 'addMembers' }>['value'];

function invalid(what: string): never {
  throw new ClientError('INVALID_ARGUMENT', what);
}

function membersFromWire(m: WireMembers | undefined): GroupMemberRef[] {
  if (!m) invalid('a member change without members');
  return m.members.map((x) => {
    if (x.aci.length !== 16) invalid('a member ACI is 16 bytes');
    return { aci: aciFromBytes(x.aci), address: x.address };
  });
}

/**
 * A decoded wire change as a checked engine change.
 * @throws ClientError INVALID_ARGUMENT when it is malformed.
 */
export function changeFromWire(w: WireGroupChange): GroupChange {
  if (w.changeId.length !== GROUP_LIMITS.changeIdBytes) invalid('a change id is 16 bytes');
  if (w.author.length !== 16) invalid('a change author is 16 bytes');
  if (w.lamport > BigInt(Number.MAX_SAFE_INTEGER) || w.timestamp > BigInt(Number.MAX_SAFE_INTEGER)) invalid('a change clock is out of range');
  let kind: GroupChangeKind;
  switch (w.kind.case) {
    case 'create':
      kind = { type: 'create', title: w.kind.value.title };
      break;
    case 'setTitle':
      kind = { type: 'set-title', title: w.kind.value };
      break;
    case 'addMembers':
      kind = { type: 'add-members', members: membersFromWire(w.kind.value) };
      break;
    case 'removeMembers':
      kind = { type: 'remove-members', members: membersFromWire(w.kind.value) };
      break;
    case 'addAdmins':
      kind = { type: 'add-admins', members: membersFromWire(w.kind.value) };
      break;
    case 'removeAdmins':
      kind = { type: 'remove-admins', members: membersFromWire(w.kind.value) };
      break;
    case 'leave':
      if (!w.kind.value) invalid('a leave change must say true');
      kind = { type: 'leave' };
      break;
    default:
      invalid('a group change has no known kind');
  }
  return checkGroupChange({
    changeId: toHex(w.changeId),
    lamport: Number(w.lamport),
    author: aciFromBytes(w.author),
    authorAddress: w.authorAddress,
    timestamp: Number(w.timestamp),
    kind,
  });
}

function membersToWire(list: readonly GroupMemberRef[]): { members: Array<{ aci: Uint8Array; address: string }> } {
  return { members: list.map((m) => ({ aci: aciToBytes(m.aci as Aci), address: m.address })) };
}

type WireKindInit =
  | { case: 'create'; value: { title: string } }
  | { case: 'setTitle'; value: string }
  | { case: 'addMembers' | 'removeMembers' | 'addAdmins' | 'removeAdmins'; value: { members: Array<{ aci: Uint8Array; address: string }> } }
  | { case: 'leave'; value: boolean };

function kindToWire(k: GroupChangeKind): WireKindInit {
  switch (k.type) {
    case 'create':
      return { case: 'create', value: { title: k.title } };
    case 'set-title':
      return { case: 'setTitle', value: k.title };
    case 'add-members':
      return { case: 'addMembers', value: membersToWire(k.members) };
    case 'remove-members':
      return { case: 'removeMembers', value: membersToWire(k.members) };
    case 'add-admins':
      return { case: 'addAdmins', value: membersToWire(k.members) };
    case 'remove-admins':
      return { case: 'removeAdmins', value: membersToWire(k.members) };
    case 'leave':
      return { case: 'leave', value: true };
  }
}

/** An engine change as the wire's GroupChange (init shape). */
export function changeToWire(c: GroupChange) {
  return {
    changeId: fromHex(c.changeId)!,
    lamport: BigInt(c.lamport),
    author: aciToBytes(c.author as Aci),
    authorAddress: c.authorAddress,
    timestamp: BigInt(c.timestamp),
    kind: kindToWire(c.kind),
  };
}

/**
 * Content carrying `changes` of group `groupId` (hex). No changes: a request for the group's
 * whole log (see groups.ts).
 */
export function groupUpdateContent(groupId: string, changes: readonly GroupChange[]): ContentInit {
  return { body: { case: 'groupUpdate', value: { groupId: fromHex(groupId)!, changes: changes.map(changeToWire) } } } as ContentInit;
}

/**
 * Most bytes of changes one GroupUpdate carries, measured as their JSON (larger than their
 * encoding); a longer log goes in several. An envelope holds 256 KiB: a group's creation with
 * 999 members (about 80 KB) goes to each member in one update, not two.
 */
export const GROUP_UPDATE_BUDGET_BYTES = 160 * 1024;

/** Splits a log into runs that each fit one GroupUpdate (a rough size: the JSON of the change). */
export function chunkChanges(changes: readonly GroupChange[], budget = GROUP_UPDATE_BUDGET_BYTES): GroupChange[][] {
  const out: GroupChange[][] = [];
  let run: GroupChange[] = [];
  let size = 0;
  for (const c of changes) {
    const n = serializeChange(c).length;
    if (run.length > 0 && size + n > budget) {
      out.push(run);
      run = [];
      size = 0;
    }
    run.push(c);
    size += n;
  }
  if (run.length > 0) out.push(run);
  return out;
}

/** A change as the store keeps it. */
export function serializeChange(c: GroupChange): string {
  return JSON.stringify(c);
}

/** A change the store kept, checked again (the database is encrypted, but a bug may have written it). */
export function parseStoredChange(body: string): GroupChange {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    invalid('a stored group change is not JSON');
  }
  return checkGroupChange(raw as GroupChange);
}
