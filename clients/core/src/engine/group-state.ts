// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Group state as a pure function of a set of changes (DESIGN §7). Every change carries a
 * Lamport clock, its author and a random id; the state is the replay of the whole set in the
 * order (lamport, author ACI, change id), where a change whose author may not make it at its
 * place in that order is skipped. So every device that holds the same set holds the same state,
 * whatever order the changes arrived in, and concurrent changes (two title changes, an add and
 * a remove, an admin removed while it changed something) resolve the same way everywhere.
 *
 * Rules at a change's place in the order:
 * - `create` counts only as the first change: its author becomes the only member and admin.
 *   Anything ordered before it, and every later `create`, is skipped.
 * - `set-title`, `add-members`, `remove-members`, `add-admins`, `remove-admins` need an admin.
 * - `leave` needs a member.
 * - A change that would take the group past {@link GROUP_LIMITS.maxMembers} is skipped whole.
 * - `remove-admins` may not remove every admin (skipped). When a removal or a leave takes the
 *   last admin away while members remain, the remaining member added earliest becomes admin,
 *   so a group is never left without anybody who can change it.
 *
 * Nothing here does I/O or reads a clock: {@link replayGroup} is the rule, {@link GroupReplica}
 * the same rule applied incrementally (changes arriving one by one), checked against each other
 * by the tests.
 */
import { formatAddress, parseAddress } from '@parley/protocol';
import { ClientError } from '../errors.js';

/** Limits of groups. */
export const GROUP_LIMITS = Object.freeze({
  /** Most members of a group (DESIGN §7). */
  maxMembers: 1000,
  /** Longest title, in characters (UTF-16 code units of the string, after trimming). */
  maxTitleChars: 128,
  /** Group ids are this many random bytes. */
  groupIdBytes: 32,
  /** Change ids are this many random bytes. */
  changeIdBytes: 16,
  /** Most changes one group holds; a larger log is refused (bounds replay time and storage). */
  maxChanges: 100_000,
});

/** A member as a change names it. */
export interface GroupMemberRef {
  /** Lowercase UUID. */
  readonly aci: string;
  /** Canonical `user@domain`. */
  readonly address: string;
}

/** What a change does. */
export type GroupChangeKind =
  | { readonly type: 'create'; readonly title: string }
  | { readonly type: 'set-title'; readonly title: string }
  | { readonly type: 'add-members'; readonly members: readonly GroupMemberRef[] }
  | { readonly type: 'remove-members'; readonly members: readonly GroupMemberRef[] }
  | { readonly type: 'add-admins'; readonly members: readonly GroupMemberRef[] }
  | { readonly type: 'remove-admins'; readonly members: readonly GroupMemberRef[] }
  | { readonly type: 'leave' };

/** One change, as validated by {@link checkGroupChange}. */
export interface GroupChange {
  /** 32 lowercase hex characters (16 random bytes). */
  readonly changeId: string;
  /** Lamport clock of the group when it was made: a non-negative safe integer. */
  readonly lamport: number;
  /** ACI of the member who made it. */
  readonly author: string;
  /** The author's canonical `user@domain`. */
  readonly authorAddress: string;
  /** The author's clock, milliseconds since the epoch (display only: never orders anything). */
  readonly timestamp: number;
  readonly kind: GroupChangeKind;
}

/** A group's state after a replay. */
export interface GroupState {
  /** 64 lowercase hex characters. */
  readonly groupId: string;
  readonly title: string;
  /** Members by ACI, in the order they were added (replay order), with their address. */
  readonly members: ReadonlyMap<string, string>;
  readonly admins: ReadonlySet<string>;
  /** Number of changes held (applied and skipped): what GroupContext.revision carries. */
  readonly revision: number;
  /** Ids of the changes that took effect, in replay order. */
  readonly applied: readonly string[];
  /** The creator's ACI, once a create is held. */
  readonly creator?: string;
  /** The highest Lamport clock of any change held (0 when none). */
  readonly maxLamport: number;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Control characters and bidi overrides: a title must not rearrange or hide what surrounds it. */
// eslint-disable-next-line no-control-regex -- these are exactly the characters refused
const UNSAFE_TITLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function invalid(what: string): never {
  throw new ClientError('INVALID_ARGUMENT', what);
}

/** Checks a group id (64 lowercase hex characters); ClientError INVALID_ARGUMENT otherwise. */
export function checkGroupId(value: unknown): string {
  if (typeof value !== 'string' || !HEX64.test(value)) invalid('a group id is 64 lowercase hex characters');
  return value;
}

/** A title trimmed and checked: 1..128 characters, no control or bidi characters. */
export function checkGroupTitle(value: unknown): string {
  if (typeof value !== 'string') invalid('a group title must be text');
  const t = value.trim();
  if (t.length === 0) invalid('a group title must not be empty');
  if (t.length > GROUP_LIMITS.maxTitleChars) invalid(`a group title has at most ${GROUP_LIMITS.maxTitleChars} characters`);
  if (UNSAFE_TITLE.test(t)) invalid('a group title must not contain control or bidi characters');
  return t;
}

function checkMemberList(value: unknown, allowEmpty = false): GroupMemberRef[] {
  if (!Array.isArray(value) || (!allowEmpty && value.length === 0)) invalid('a member change names at least one member');
  if (value.length > GROUP_LIMITS.maxMembers) invalid(`a member change names at most ${GROUP_LIMITS.maxMembers} members`);
  const seen = new Set<string>();
  return value.map((m: unknown) => {
    const r = m as Partial<GroupMemberRef> | null;
    if (!r || typeof r.aci !== 'string' || !UUID.test(r.aci)) invalid('a member is named by a lowercase UUID');
    if (seen.has(r.aci)) invalid('a member change names each member once');
    seen.add(r.aci);
    let address: string;
    try {
      address = formatAddress(parseAddress(r.address as string));
    } catch {
      invalid('a member has an address user@domain');
    }
    return { aci: r.aci, address };
  });
}

/**
 * Checks a change from outside (the wire, the store) and returns it canonical.
 * @throws ClientError INVALID_ARGUMENT naming what is wrong.
 */
export function checkGroupChange(input: GroupChange): GroupChange {
  if (!input || typeof input !== 'object') invalid('a group change must be an object');
  if (typeof input.changeId !== 'string' || !HEX32.test(input.changeId)) invalid('a change id is 32 lowercase hex characters');
  if (!Number.isSafeInteger(input.lamport) || input.lamport < 0) invalid('a change lamport is a non-negative safe integer');
  if (typeof input.author !== 'string' || !UUID.test(input.author)) invalid('a change author is a lowercase UUID');
  if (!Number.isSafeInteger(input.timestamp) || input.timestamp < 0) invalid('a change timestamp is a non-negative safe integer');
  let authorAddress: string;
  try {
    authorAddress = formatAddress(parseAddress(input.authorAddress));
  } catch {
    invalid('a change author has an address user@domain');
  }
  const k = input.kind as GroupChangeKind | undefined;
  let kind: GroupChangeKind;
  switch (k?.type) {
    case 'create':
    case 'set-title':
      kind = { type: k.type, title: checkGroupTitle(k.title) };
      break;
    case 'add-members':
    case 'remove-members':
    case 'add-admins':
    case 'remove-admins':
      kind = { type: k.type, members: checkMemberList(k.members) };
      break;
    case 'leave':
      kind = { type: 'leave' };
      break;
    default:
      invalid('a group change has no known kind');
  }
  return { changeId: input.changeId, lamport: input.lamport, author: input.author, authorAddress, timestamp: input.timestamp, kind };
}

/** The replay order: (lamport, author ACI, change id), ascending. */
export function compareGroupChanges(a: GroupChange, b: GroupChange): number {
  if (a.lamport !== b.lamport) return a.lamport < b.lamport ? -1 : 1;
  if (a.author !== b.author) return a.author < b.author ? -1 : 1;
  return a.changeId < b.changeId ? -1 : a.changeId > b.changeId ? 1 : 0;
}

/** Mutable state during a replay. */
class Machine {
  title = '';
  creator: string | undefined;
  readonly members = new Map<string, string>();
  readonly admins = new Set<string>();
  readonly applied: string[] = [];

  /** Applies `c` when its author may make it here; returns whether it took effect. */
  apply(c: GroupChange): boolean {
    const ok = this.tryApply(c);
    if (ok) this.applied.push(c.changeId);
    return ok;
  }

  private tryApply(c: GroupChange): boolean {
    const k = c.kind;
    if (k.type === 'create') {
      if (this.creator !== undefined) return false;
      this.creator = c.author;
      this.title = k.title;
      this.members.set(c.author, c.authorAddress);
      this.admins.add(c.author);
      return true;
    }
    if (this.creator === undefined) return false;
    if (k.type === 'leave') {
      if (!this.members.has(c.author)) return false;
      this.removeMembers([c.author]);
      return true;
    }
    if (!this.admins.has(c.author)) return false;
    switch (k.type) {
      case 'set-title':
        this.title = k.title;
        return true;
      case 'add-members': {
        const fresh = k.members.filter((m) => !this.members.has(m.aci));
        if (this.members.size + fresh.length > GROUP_LIMITS.maxMembers) return false;
        for (const m of fresh) this.members.set(m.aci, m.address);
        return true;
      }
      case 'remove-members':
        this.removeMembers(k.members.map((m) => m.aci));
        return true;
      case 'add-admins':
        for (const m of k.members) if (this.members.has(m.aci)) this.admins.add(m.aci);
        return true;
      case 'remove-admins': {
        const left = [...this.admins].filter((a) => !k.members.some((m) => m.aci === a));
        if (left.length === 0) return false;
        for (const m of k.members) this.admins.delete(m.aci);
        return true;
      }
    }
  }

  private removeMembers(acis: readonly string[]): void {
    for (const aci of acis) {
      this.members.delete(aci);
      this.admins.delete(aci);
    }
    if (this.admins.size === 0 && this.members.size > 0) this.admins.add(this.members.keys().next().value!);
  }

  snapshot(groupId: string, revision: number, maxLamport: number): GroupState {
    return {
      groupId,
      title: this.title,
      members: new Map(this.members),
      admins: new Set(this.admins),
      revision,
      applied: [...this.applied],
      ...(this.creator !== undefined ? { creator: this.creator } : {}),
      maxLamport,
    };
  }
}

/**
 * The state of group `groupId` from `changes` (any order; repeats of a change id count once).
 * The changes must have passed {@link checkGroupChange}.
 */
export function replayGroup(groupId: string, changes: Iterable<GroupChange>): GroupState {
  const byId = new Map<string, GroupChange>();
  for (const c of changes) if (!byId.has(c.changeId)) byId.set(c.changeId, c);
  const sorted = [...byId.values()].sort(compareGroupChanges);
  const m = new Machine();
  let maxLamport = 0;
  for (const c of sorted) {
    m.apply(c);
    if (c.lamport > maxLamport) maxLamport = c.lamport;
  }
  return m.snapshot(groupId, sorted.length, maxLamport);
}

/**
 * One device's copy of a group: the changes it holds and the state they give. Changes that
 * sort after everything held (the usual case: a new change from a member who had seen the
 * rest) are applied on top; one that sorts earlier (a concurrent change that arrived late)
 * makes it replay from the start. Both paths give what {@link replayGroup} gives.
 */
export class GroupReplica {
  readonly groupId: string;
  readonly #changes: GroupChange[] = [];
  readonly #ids = new Set<string>();
  #machine = new Machine();
  #maxLamport = 0;

  /** An empty replica of `groupId`, or one holding `changes`. */
  constructor(groupId: string, changes: Iterable<GroupChange> = []) {
    this.groupId = groupId;
    this.merge(changes);
  }

  /** Number of changes held. */
  get size(): number {
    return this.#changes.length;
  }

  /** Whether change `changeId` is held. */
  has(changeId: string): boolean {
    return this.#ids.has(changeId);
  }

  /** Every change held, in replay order. */
  changes(): readonly GroupChange[] {
    return this.#changes;
  }

  /**
   * Adds changes (already held ones are ignored) and returns the ones that were new, in replay
   * order. Throws ClientError INVALID_ARGUMENT (changing nothing) when the group would hold
   * more than {@link GROUP_LIMITS.maxChanges}.
   */
  merge(changes: Iterable<GroupChange>): GroupChange[] {
    const fresh: GroupChange[] = [];
    const ids = new Set<string>();
    for (const c of changes) {
      if (this.#ids.has(c.changeId) || ids.has(c.changeId)) continue;
      ids.add(c.changeId);
      fresh.push(c);
    }
    if (fresh.length === 0) return [];
    if (this.#changes.length + fresh.length > GROUP_LIMITS.maxChanges) invalid(`a group holds at most ${GROUP_LIMITS.maxChanges} changes`);
    fresh.sort(compareGroupChanges);
    const last = this.#changes.at(-1);
    const appendOnly = last === undefined || compareGroupChanges(last, fresh[0]!) < 0;
    for (const c of fresh) {
      this.#ids.add(c.changeId);
      if (c.lamport > this.#maxLamport) this.#maxLamport = c.lamport;
    }
    if (appendOnly) {
      this.#changes.push(...fresh);
      for (const c of fresh) this.#machine.apply(c);
    } else {
      this.#changes.push(...fresh);
      this.#changes.sort(compareGroupChanges);
      this.#machine = new Machine();
      for (const c of this.#changes) this.#machine.apply(c);
    }
    return fresh;
  }

  /** The current state. */
  state(): GroupState {
    return this.#machine.snapshot(this.groupId, this.#changes.length, this.#maxLamport);
  }

  /** Whether `aci` is a member now. */
  isMember(aci: string): boolean {
    return this.#machine.members.has(aci);
  }

  /** Whether `aci` is an admin now. */
  isAdmin(aci: string): boolean {
    return this.#machine.admins.has(aci);
  }
}
