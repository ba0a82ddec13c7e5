// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Groups in the engine (DESIGN §7): making changes, taking in changes and group messages from
 * others, and queueing group messages for the multi-recipient sender (group-sender.ts).
 *
 * State: a group's state is the replay of its change log (group-state.ts). A change made here is
 * applied locally and sent PAIRWISE (1:1, through the ordinary outbox) as a GroupUpdate to every
 * member account (all their devices, and this account's other devices); members it adds get the
 * whole log instead, and members it removes get the removal so they know.
 *
 * Convergence needs every member to end up with every change. Besides the author's own sends:
 * - a device that learns (from someone else's change) of members it did not know sends them the
 *   changes it authored itself, which their adder may not have had;
 * - a group message carries how many changes its sender holds (GroupContext.revision); a device
 *   holding fewer asks an admin for the whole log with an empty GroupUpdate, and admins answer
 *   members' requests with their log.
 *
 * Trust: the envelope's sender is authenticated by its session, a change's author is only what
 * the change says. So a change is taken in when its author is the sender, or when the sender is
 * an admin of the group (admins relay logs: to members they add, in answer to requests); a
 * non-admin cannot slip in changes in someone else's name. A `create` is taken in only for a
 * group that has none yet; a group this account is not in is never created from an update.
 *
 * Removals: when a member leaves or is removed, every device drops the sender keys that member's
 * devices handed it for the group, and every remaining member's device starts a new sender key
 * (distribution id) before its next group message, handed only to the remaining members: the
 * removed member can read nothing sent after its removal.
 */
import { randomBytes } from '@parley/crypto';
import type { ProtocolStores } from '@parley/crypto';
import { fromHex, parseAddress, formatAddress, toHex, type Content } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { GroupStore, StoredGroupChange } from '../store/group-store.js';
import type { GroupMemberView, GroupView } from './client-api.js';
import { attachmentsFromPointers, pointerOf, type NewEngineAttachment } from './attachment-pointers.js';
import { encodeContent } from './content-codec.js';
import { changeFromWire, chunkChanges, groupUpdateContent, parseStoredChange, serializeChange, type WireGroupUpdate } from './group-codec.js';
import {
  checkGroupTitle,
  compareGroupChanges,
  GROUP_LIMITS,
  GroupReplica,
  type GroupChange,
  type GroupChangeKind,
  type GroupMemberRef,
  type GroupState,
} from './group-state.js';
import type { EngineMessage, EngineStore } from './engine-store.js';
import { isAction, type ActionOutcome, type DataMessageInit, type MessageActions } from './message-actions.js';

/** How the engine names a group's conversation: `#` and the group id. */
export const GROUP_HANDLE_PREFIX = '#';
/** Shortest id prefix a group may be named by. */
export const MIN_GROUP_ID_PREFIX = 6;
/** A device asks for a group's log at most this often, ms. */
export const LOG_REQUEST_INTERVAL_MS = 10 * 60_000;

/** Whether `text` names a group (`#…`) rather than an address. */
export function isGroupRef(text: string): boolean {
  return typeof text === 'string' && text.startsWith(GROUP_HANDLE_PREFIX);
}

/** This device, as the group code needs it. */
export interface GroupSelf {
  readonly aci: string;
  readonly deviceId: number;
  /** `user@domain`. */
  readonly address: string;
  readonly domain: string;
}

/** What {@link Groups} needs. */
export interface GroupsDeps {
  readonly store: EngineStore;
  readonly groups: GroupStore;
  /** Deletes a sender key (`"<aci>.<device>"`, distribution id) from the protocol store. */
  readonly deleteSenderKey: (address: string, distributionId: string) => void;
  readonly self: GroupSelf;
  readonly now: () => number;
  /** The account behind an address (the directory for unknown ones). */
  readonly resolve: (address: string) => Promise<{ aci: string; conversation: string }>;
  /** Runs `fn` alone with respect to sends and receives (they share the ratchets). */
  readonly serial: <T>(fn: () => Promise<T> | T) => Promise<T>;
  /** Processes a sender key distribution message through `stores`; returns its distribution id. */
  readonly processDistribution: (stores: ProtocolStores, sender: { aci: string; deviceId: number }, message: Uint8Array) => Promise<string>;
  /**
   * Edits, deletes, reactions, replies and disappearing messages: group messages that are
   * actions are applied through it (as in a 1:1 conversation), and group messages carry the
   * group's timer. Without it group messages are plain texts.
   */
  readonly actions?: MessageActions;
}

/** A received content the groups module may take over; see {@link Groups.receive}. */
export interface GroupReceipt {
  readonly source: string;
  readonly sourceDevice: number;
  readonly content: Content;
  /** The batch's staged protocol stores (committed with its transaction). */
  readonly stores: ProtocolStores;
  readonly now: number;
  /** Queues a store write into the batch's transaction (run in order, before the ack). */
  readonly addEffect: (effect: () => void) => void;
  /** Announces a stored message once the batch committed; call inside an effect. */
  readonly announce: (m: EngineMessage) => void;
  /** Marks the envelope handled without a visible message; call inside an effect. */
  readonly markSeen: () => void;
  /** The relay's commit time of the envelope (edit and delete windows), ms. */
  readonly serverTimestamp?: number;
  /** Where applied actions (edits, deletes, reactions, timer changes) are collected for the batch. */
  readonly outcome?: ActionOutcome;
}

type Change = GroupChange;

function member(aci: string, address: string): GroupMemberRef {
  return { aci, address };
}

function canonical(address: string, domain: string): string {
  try {
    return formatAddress(parseAddress(address, domain));
  } catch {
    throw new ClientError('INVALID_ARGUMENT', `${JSON.stringify(address.slice(0, 64))} is not an address user@domain`);
  }
}

/** The text of a change's notice in the group's conversation. */
export function describeChange(c: Change): string {
  const who = c.authorAddress;
  const list = (ms: readonly GroupMemberRef[]) => ms.map((m) => m.address).join(', ');
  switch (c.kind.type) {
    case 'create':
      return `${who} created the group “${c.kind.title}”`;
    case 'set-title':
      return `${who} changed the title to “${c.kind.title}”`;
    case 'add-members':
      return `${who} added ${list(c.kind.members)}`;
    case 'remove-members':
      return `${who} removed ${list(c.kind.members)}`;
    case 'add-admins':
      return `${who} made ${list(c.kind.members)} admin`;
    case 'remove-admins':
      return `${who} took admin rights from ${list(c.kind.members)}`;
    case 'leave':
      return `${who} left`;
  }
}

/** See the module comment. */
export class Groups {
  private readonly deps: GroupsDeps;
  /** When this device last asked for a group's log (ms), by group id. */
  private readonly logRequests = new Map<string, number>();

  constructor(deps: GroupsDeps) {
    this.deps = deps;
  }

  // ── reading ────────────────────────────────────────────────────────────────────────────────

  /** The replica of group `groupId` from its stored log (empty when unknown). */
  replica(groupId: string): GroupReplica {
    const stored = this.deps.groups.group(groupId) ? this.deps.groups.changes(groupId) : [];
    const changes: Change[] = [];
    for (const s of stored) {
      try {
        changes.push(parseStoredChange(s.body));
      } catch {
        // A stored change that no longer checks out is left out of the replay (it was checked
        // when it arrived, so only a bug or a newer version could have written it).
      }
    }
    return new GroupReplica(groupId, changes);
  }

  /**
   * Takes in a group's log from the history archive of this account's approving device (inside
   * the import's transaction). Changes that do not check out are left out; nothing is sent.
   */
  importLog(groupId: string, bodies: readonly string[]): void {
    if (!/^[0-9a-f]{64}$/.test(groupId) || bodies.length > GROUP_LIMITS.maxChanges) return;
    const changes: Change[] = [];
    for (const b of bodies) {
      try {
        changes.push(parseStoredChange(b));
      } catch {
        // A change that does not check out is left out; the rest still count.
      }
    }
    if (changes.length > 0) this.apply(groupId, changes, { local: true });
  }

  /** Whether `aci` is in none of the groups this account is a member of. */
  isStranger(aci: string): boolean {
    return !this.deps.groups.sharesGroupWith(aci);
  }

  /** The view of group `groupId`. */
  view(groupId: string): GroupView {
    const g = this.deps.groups.group(groupId);
    if (!g) throw new ClientError('NOT_FOUND', 'no such group');
    const members: GroupMemberView[] = this.deps.groups.members(groupId).map((m) => ({ aci: m.aci, address: m.address, admin: m.admin }));
    const me = members.find((m) => m.aci === this.deps.self.aci);
    return {
      id: g.id,
      handle: `${GROUP_HANDLE_PREFIX}${g.id}`,
      title: g.title,
      members,
      revision: g.revision,
      member: g.isMember,
      admin: me?.admin ?? false,
    };
  }

  /** Every group this device knows, most recently active first. */
  list(): GroupView[] {
    return this.deps.groups
      .groups()
      .filter((g) => g.revision > 0)
      .map((g) => this.view(g.id));
  }

  /**
   * The id of the group `ref` names: `#` (optional) followed by the whole id, a unique prefix
   * of at least {@link MIN_GROUP_ID_PREFIX} hex digits, or the group's title (case-insensitive).
   * @throws ClientError NOT_FOUND when nothing matches, AMBIGUOUS_GROUP when several do.
   */
  resolveRef(ref: string): string {
    if (typeof ref !== 'string') throw new ClientError('INVALID_ARGUMENT', 'a group is named by #id or #title');
    const text = (ref.startsWith(GROUP_HANDLE_PREFIX) ? ref.slice(1) : ref).trim();
    if (text.length === 0) throw new ClientError('INVALID_ARGUMENT', 'a group is named by #id or #title');
    const all = this.deps.groups.groups().filter((g) => g.revision > 0);
    const hex = text.toLowerCase();
    if (/^[0-9a-f]+$/.test(hex) && hex.length >= MIN_GROUP_ID_PREFIX) {
      const byId = all.filter((g) => g.id.startsWith(hex));
      if (byId.length === 1) return byId[0]!.id;
      if (byId.length > 1) throw new ClientError('AMBIGUOUS_GROUP', `${byId.length} groups have ids starting with ${hex}`);
    }
    const byTitle = all.filter((g) => g.title.toLowerCase() === text.toLowerCase());
    if (byTitle.length === 1) return byTitle[0]!.id;
    if (byTitle.length > 1) throw new ClientError('AMBIGUOUS_GROUP', `${byTitle.length} groups are called “${text}”: name one by its id`);
    throw new ClientError('NOT_FOUND', `no group is called “${text}” or has an id starting with it`);
  }

  // ── changes made here ────────────────────────────────────────────────────────────────────

  /** Creates a group with this account as its only admin and `addresses` as members. */
  async create(title: string, addresses: readonly string[]): Promise<GroupView> {
    const t = checkGroupTitle(title);
    const members = await this.resolveMembers(addresses);
    if (members.length + 1 > GROUP_LIMITS.maxMembers) throw new ClientError('GROUP_FULL');
    const groupId = toHex(randomBytes(GROUP_LIMITS.groupIdBytes));
    await this.deps.serial(() =>
      this.deps.store.transaction(() => {
        this.commitLocal(groupId, { type: 'create', title: t });
        if (members.length > 0) this.commitLocal(groupId, { type: 'add-members', members });
      }),
    );
    return this.view(groupId);
  }

  /** Adds `addresses` to the group (an admin's change). */
  async addMembers(ref: string, addresses: readonly string[]): Promise<GroupView> {
    const groupId = this.resolveRef(ref);
    this.requireAdmin(groupId);
    const members = await this.resolveMembers(addresses);
    return this.change(groupId, (state) => {
      const fresh = members.filter((m) => !state.members.has(m.aci));
      if (fresh.length === 0) throw new ClientError('INVALID_ARGUMENT', 'everyone named is a member already');
      if (state.members.size + fresh.length > GROUP_LIMITS.maxMembers) throw new ClientError('GROUP_FULL');
      return { type: 'add-members', members: fresh };
    });
  }

  /** Removes members named by address (an admin's change). */
  async removeMembers(ref: string, addresses: readonly string[]): Promise<GroupView> {
    const groupId = this.resolveRef(ref);
    return this.change(groupId, (state) => {
      const members = this.namedMembers(state, addresses);
      if (members.some((m) => m.aci === this.deps.self.aci)) throw new ClientError('INVALID_ARGUMENT', 'to leave the group use group leave');
      return { type: 'remove-members', members };
    });
  }

  /** Leaves the group. */
  async leave(ref: string): Promise<GroupView> {
    const groupId = this.resolveRef(ref);
    return this.change(groupId, () => ({ type: 'leave' }), { adminOnly: false });
  }

  /** Makes members admins, or takes admin rights away (an admin's change). */
  async changeAdmins(ref: string, change: { add?: readonly string[]; remove?: readonly string[] }): Promise<GroupView> {
    const groupId = this.resolveRef(ref);
    const add = change.add ?? [];
    const remove = change.remove ?? [];
    if ((add.length === 0) === (remove.length === 0)) throw new ClientError('INVALID_ARGUMENT', 'name admins to add or to remove (one of the two)');
    return this.change(groupId, (state) => {
      const members = this.namedMembers(state, add.length > 0 ? add : remove);
      if (add.length > 0) return { type: 'add-admins', members };
      const left = [...state.admins].filter((a) => !members.some((m) => m.aci === a));
      if (left.length === 0) throw new ClientError('INVALID_ARGUMENT', 'a group keeps at least one admin');
      return { type: 'remove-admins', members };
    });
  }

  /** Changes the group's title (an admin's change). */
  async setTitle(ref: string, title: string): Promise<GroupView> {
    const groupId = this.resolveRef(ref);
    const t = checkGroupTitle(title);
    return this.change(groupId, () => ({ type: 'set-title', title: t }));
  }

  private requireAdmin(groupId: string): void {
    const members = this.deps.groups.members(groupId);
    const me = members.find((m) => m.aci === this.deps.self.aci);
    if (!me) throw new ClientError('NOT_GROUP_MEMBER', 'this account is not a member of the group');
    if (!me.admin) throw new ClientError('NOT_GROUP_ADMIN');
  }

  /** Checks and commits one local change; `make` sees the current state and may refuse. */
  private async change(groupId: string, make: (state: GroupState) => GroupChangeKind, options: { adminOnly?: boolean } = {}): Promise<GroupView> {
    await this.deps.serial(() =>
      this.deps.store.transaction(() => {
        const state = this.replica(groupId).state();
        if (!state.members.has(this.deps.self.aci)) throw new ClientError('NOT_GROUP_MEMBER', 'this account is not a member of the group');
        if (options.adminOnly !== false && !state.admins.has(this.deps.self.aci)) throw new ClientError('NOT_GROUP_ADMIN');
        this.commitLocal(groupId, make(state));
      }),
    );
    return this.view(groupId);
  }

  private namedMembers(state: GroupState, addresses: readonly string[]): GroupMemberRef[] {
    if (addresses.length === 0) throw new ClientError('INVALID_ARGUMENT', 'name at least one member');
    const byAddress = new Map([...state.members].map(([aci, address]) => [address, aci]));
    const out: GroupMemberRef[] = [];
    for (const a of addresses) {
      const address = canonical(a, this.deps.self.domain);
      const aci = byAddress.get(address);
      if (!aci) throw new ClientError('NOT_GROUP_MEMBER', `${address} is not a member of the group`);
      if (!out.some((m) => m.aci === aci)) out.push(member(aci, address));
    }
    return out;
  }

  private async resolveMembers(addresses: readonly string[]): Promise<GroupMemberRef[]> {
    const out: GroupMemberRef[] = [];
    for (const a of addresses) {
      const address = canonical(a, this.deps.self.domain);
      const { aci, conversation } = await this.deps.resolve(address);
      if (aci === this.deps.self.aci || out.some((m) => m.aci === aci)) continue;
      out.push(member(aci, conversation));
    }
    return out;
  }

  /**
   * Makes a change here (synchronously, inside the caller's transaction): applies it and queues
   * the GroupUpdates it needs.
   */
  private commitLocal(groupId: string, kind: GroupChangeKind): Change {
    const { self, store, now } = this.deps;
    const before = this.replica(groupId);
    const state = before.state();
    const change: Change = {
      changeId: toHex(randomBytes(GROUP_LIMITS.changeIdBytes)),
      lamport: Math.max(state.maxLamport, store.maxLamport(`${GROUP_HANDLE_PREFIX}${groupId}`)) + 1,
      author: self.aci,
      authorAddress: self.address,
      timestamp: now(),
      kind,
    };
    const { after, log } = this.apply(groupId, [change], { local: true });
    // Who hears of it: every member after it, everyone it removed (so they know), and this
    // account's other devices. Members it added get the whole log.
    const added = new Set([...after.members.keys()].filter((aci) => !state.members.has(aci)));
    const recipients = new Map<string, string>([...state.members, ...after.members]);
    recipients.set(self.aci, self.address);
    for (const [aci, address] of recipients) {
      if (added.has(aci) && aci !== self.aci) this.queueUpdates(groupId, aci, address, log);
      else this.queueUpdates(groupId, aci, address, [change]);
    }
    return change;
  }

  /** Queues `changes` for account `aci` (all its devices; this account: its other devices). */
  private queueUpdates(groupId: string, aci: string, address: string, changes: readonly Change[]): void {
    // No changes at all is a request for the log: one empty update.
    for (const run of changes.length === 0 ? [[]] : chunkChanges(changes)) {
      this.deps.store.outboxAdd({
        destinationAci: aci,
        destinationAddress: address,
        content: encodeContent(groupUpdateContent(groupId, run)),
        nowMs: this.deps.now(),
      });
    }
  }

  /**
   * Merges `offered` into group `groupId` and stores what changed: the log, the replayed state,
   * the notices in the conversation, and the consequences of removals and additions. Runs
   * inside a transaction. Returns the states before and after and the whole log.
   */
  private apply(
    groupId: string,
    offered: readonly Change[],
    options: { local: boolean; announce?: (m: EngineMessage) => void },
  ): { before: GroupState; after: GroupState; fresh: Change[]; log: readonly Change[] } {
    const { self, groups } = this.deps;
    const replica = this.replica(groupId);
    const before = replica.state();
    const lastBefore = replica.changes().at(-1);
    const fresh = replica.merge(offered);
    const after = replica.state();
    if (fresh.length === 0) return { before, after, fresh, log: replica.changes() };
    groups.ensureGroup(groupId);
    groups.addChanges(
      groupId,
      fresh.map((c): StoredGroupChange => ({ changeId: c.changeId, lamport: c.lamport, authorAci: c.author, body: serializeChange(c) })),
    );
    groups.saveState(groupId, {
      title: after.title,
      revision: after.revision,
      maxLamport: after.maxLamport,
      isMember: after.members.has(self.aci),
      ...(after.creator !== undefined ? { creatorAci: after.creator } : {}),
      members: [...after.members].map(([aci, address]) => ({ aci, address, admin: after.admins.has(aci) })),
    });

    // Notices: one per change that took effect, named by the change id, so every device shows
    // the same ones. A late change ordered before others may void some: recheck them all then.
    const replayed = lastBefore !== undefined && compareGroupChanges(fresh[0]!, lastBefore) < 0;
    const applied = new Set(after.applied);
    for (const c of replayed ? replica.changes() : fresh) {
      if (applied.has(c.changeId)) this.insertNotice(groupId, c, options.announce);
      else if (replayed) groups.deleteGroupMessage(groupId, c.author, c.changeId);
    }

    // Removals: the removed members' sender keys go; the remaining members' next group message
    // goes out under a new key of this device's.
    const removed = [...before.members.keys()].filter((aci) => !after.members.has(aci));
    for (const aci of removed) {
      if (aci === self.aci) continue;
      for (const k of groups.takeSenderKeys(groupId, aci)) this.deps.deleteSenderKey(k.address, k.distributionId);
    }
    if (removed.length > 0 && after.members.has(self.aci) && groups.group(groupId)?.ownDistributionId !== undefined) {
      groups.rotateOwnDistribution(groupId);
    }

    // Members this device learned of from someone else's change may lack the changes this
    // device authored (their adder may not have had them yet): send those.
    if (!options.local && after.members.has(self.aci)) {
      const added = [...after.members].filter(([aci]) => !before.members.has(aci) && aci !== self.aci);
      const mine = replica.changes().filter((c) => c.author === self.aci);
      if (added.length > 0 && mine.length > 0) for (const [aci, address] of added) this.queueUpdates(groupId, aci, address, mine);
    }
    return { before, after, fresh, log: replica.changes() };
  }

  private insertNotice(groupId: string, c: Change, announce?: (m: EngineMessage) => void): void {
    const mine = c.author === this.deps.self.aci;
    const m: EngineMessage = {
      id: c.changeId,
      conversation: `${GROUP_HANDLE_PREFIX}${groupId}`,
      senderAci: c.author,
      senderDevice: 1,
      direction: mine ? 'out' : 'in',
      body: describeChange(c),
      kind: 'system',
      sentAt: c.timestamp,
      receivedAt: this.deps.now(),
      lamport: c.lamport,
      status: mine ? 'sent' : 'received',
    };
    if (this.deps.store.insertMessage(m) === 'inserted') announce?.(m);
  }

  // ── group messages from here ─────────────────────────────────────────────────────────────

  /**
   * Queues a text for group `ref` (synchronously, in one transaction): the message, its group
   * send, and a transcript for this account's other devices. Returns the message.
   */
  queueMessage(ref: string, text: string, extra: { quote?: DataMessageInit['quote']; attachments?: readonly NewEngineAttachment[] } = {}): EngineMessage {
    const { self, store, groups, now, actions } = this.deps;
    const groupId = this.resolveRef(ref);
    return store.transaction(() => {
      const g = groups.group(groupId);
      if (!g?.isMember) throw new ClientError('NOT_GROUP_MEMBER', 'this account is not a member of the group');
      const conversation = `${GROUP_HANDLE_PREFIX}${groupId}`;
      const t = now();
      const id = randomBytes(16);
      const lamport = Math.max(g.maxLamport, store.maxLamport(conversation)) + 1;
      const m: EngineMessage = {
        id: toHex(id),
        conversation,
        senderAci: self.aci,
        senderDevice: self.deviceId,
        direction: 'out',
        body: text,
        kind: 'text',
        sentAt: t,
        receivedAt: t,
        lamport,
        status: 'pending',
      };
      store.insertMessage(m);
      const attachments = extra.attachments ?? [];
      if (attachments.length > 0) store.saveAttachments(self.aci, m.id, attachments);
      // Delivery and read state per member (receipts come from each).
      store.addRecipients(
        m.id,
        groups
          .members(groupId)
          .map((x) => x.aci)
          .filter((aci) => aci !== self.aci),
      );
      const expireTimerSeconds = actions?.timerOf(conversation) ?? 0;
      actions?.afterStored(m, { expireTimerSeconds, quote: extra.quote }, { events: [], stored: [], files: [], purge: false });
      this.queueData(groupId, {
        messageId: id,
        lamport: BigInt(lamport),
        timestamp: BigInt(t),
        text,
        senderAddress: self.address,
        expireTimerSeconds,
        attachments: attachments.map(pointerOf),
        ...(extra.quote ? { quote: extra.quote } : {}),
      }, m.id);
      return m;
    });
  }

  /**
   * Queues `data` for group `groupId` (one multi-recipient send) and a transcript for this
   * account's other devices, inside the caller's transaction; `group` is filled in.
   * `messageId` names the stored message the send carries, if any.
   * @throws ClientError NOT_GROUP_MEMBER.
   */
  queueData(groupId: string, data: DataMessageInit, messageId?: string): void {
    const { self, store, groups, now } = this.deps;
    const g = groups.group(groupId);
    if (!g?.isMember) throw new ClientError('NOT_GROUP_MEMBER', 'this account is not a member of the group');
    const t = now();
    const full: DataMessageInit = { ...data, group: { groupId: fromHex(groupId)!, revision: BigInt(g.revision) } };
    groups.outbox.enqueue({ groupId, ...(messageId ? { messageId } : {}), content: encodeContent({ body: { case: 'data', value: full } }), timestamp: t });
    store.outboxAdd({
      destinationAci: self.aci,
      content: encodeContent({ body: { case: 'sync', value: { kind: { case: 'sent', value: { destinationAddress: '', message: full } } } } }),
      nowMs: t,
    });
  }

  // ── receiving ────────────────────────────────────────────────────────────────────────────

  /**
   * Takes over a received content that belongs to groups (a GroupUpdate, a sender key, a group
   * message or its transcript) and returns true; returns false for anything else. Decisions
   * are made in effects, against the store as the batch's transaction sees it.
   */
  async receive(r: GroupReceipt): Promise<boolean> {
    const body = r.content.body;
    switch (body.case) {
      case 'groupUpdate':
        r.addEffect(() => {
          this.takeUpdate(r, body.value);
          r.markSeen();
        });
        return true;
      case 'senderKeyDistribution': {
        const { groupId, message } = body.value;
        let distributionId: string | undefined;
        try {
          distributionId = await this.deps.processDistribution(r.stores, { aci: r.source, deviceId: r.sourceDevice }, message);
        } catch {
          distributionId = undefined; // not a distribution message: nothing to keep
        }
        r.addEffect(() => {
          if (distributionId !== undefined && groupId.length === GROUP_LIMITS.groupIdBytes && this.deps.groups.group(toHex(groupId))) {
            this.deps.groups.recordSenderKey(toHex(groupId), { aci: r.source, deviceId: r.sourceDevice }, distributionId);
          }
          r.markSeen();
        });
        return true;
      }
      case 'data': {
        const d = body.value;
        if (!d.group) return false;
        const groupBytes = d.group.groupId;
        r.addEffect(() => {
          if (!this.takeMessage(r, d, groupBytes, r.source === this.deps.self.aci ? 'out' : 'in')) r.markSeen();
        });
        return true;
      }
      case 'sync': {
        const s = body.value;
        if (s.kind.case !== 'sent' || !s.kind.value.message?.group) return false;
        const d = s.kind.value.message;
        const groupBytes = d.group!.groupId;
        r.addEffect(() => {
          // Transcripts only from this account's own devices.
          if (r.source !== this.deps.self.aci || !this.takeMessage(r, d, groupBytes, 'out')) r.markSeen();
        });
        return true;
      }
      default:
        return false;
    }
  }

  /** Stores a group message when its sender is a member; false when it was dropped. */
  private takeMessage(
    r: GroupReceipt,
    d: Extract<Content['body'], { case: 'data' }>['value'],
    groupBytes: Uint8Array,
    direction: 'in' | 'out',
  ): boolean {
    const { groups, store, self } = this.deps;
    if (groupBytes.length !== GROUP_LIMITS.groupIdBytes || d.messageId.length !== 16) return false;
    const groupId = toHex(groupBytes);
    const g = groups.group(groupId);
    // A message from someone who is not a member (never was, or was removed) is dropped.
    if (!g || !groups.isMember(groupId, r.source)) return false;
    const conversation = `${GROUP_HANDLE_PREFIX}${groupId}`;
    const { actions } = this.deps;
    if (actions && r.outcome) {
      if (isAction(d)) {
        // An edit, delete, reaction or timer change: applied with the 1:1 rules, never shown as a message.
        actions.applyIncoming({ senderAci: r.source, senderDevice: r.sourceDevice, conversation, serverTimestamp: r.serverTimestamp ?? 0, now: r.now }, d, r.outcome);
        return false;
      }
      if (actions.expiredOnArrival(d, r.now)) return false;
    }
    const m: EngineMessage = {
      id: toHex(d.messageId),
      conversation: `${GROUP_HANDLE_PREFIX}${groupId}`,
      senderAci: r.source,
      senderDevice: r.sourceDevice,
      direction,
      body: d.text,
      kind: 'text',
      sentAt: Number(d.timestamp),
      receivedAt: r.now,
      lamport: Number(d.lamport),
      status: direction === 'out' ? 'sent' : 'received',
    };
    if (store.insertMessage(m) === 'inserted') {
      store.saveAttachments(r.source, m.id, attachmentsFromPointers(d.attachments));
      r.announce(m);
      if (actions && r.outcome) actions.afterStored(m, d, r.outcome);
      // A transcript of this account's group message: its members are the recipients.
      if (direction === 'out') {
        store.addRecipients(
          m.id,
          groups
            .members(groupId)
            .map((x) => x.aci)
            .filter((aci) => aci !== self.aci),
          'sent',
        );
      }
    }
    // The sender holds changes this device lacks: ask an admin for the log.
    if (d.group && Number(d.group.revision) > g.revision && r.source !== self.aci) this.requestLog(groupId, r.now);
    return true;
  }

  private requestLog(groupId: string, now: number): void {
    const last = this.logRequests.get(groupId);
    if (last !== undefined && now - last < LOG_REQUEST_INTERVAL_MS) return;
    const admin = this.deps.groups.members(groupId).find((m) => m.admin && m.aci !== this.deps.self.aci);
    if (!admin) return;
    this.logRequests.set(groupId, now);
    this.queueUpdates(groupId, admin.aci, admin.address, []);
  }

  /** Takes in a GroupUpdate (inside the batch's transaction). */
  private takeUpdate(r: GroupReceipt, update: WireGroupUpdate): void {
    const { self } = this.deps;
    if (update.groupId.length !== GROUP_LIMITS.groupIdBytes) return;
    const groupId = toHex(update.groupId);
    if (update.changes.length > GROUP_LIMITS.maxChanges) return;
    const current = this.replica(groupId);
    const state = current.state();
    if (update.changes.length === 0) {
      // A member asks for the whole log: admins answer.
      if (state.members.has(r.source) && state.admins.has(self.aci)) {
        const address = state.members.get(r.source)!;
        this.queueUpdates(groupId, r.source, address, current.changes());
      }
      return;
    }
    const offered: Change[] = [];
    for (const w of update.changes) {
      try {
        offered.push(changeFromWire(w));
      } catch {
        // A malformed change is dropped on its own; the rest still count.
      }
    }
    const fromSelf = r.source === self.aci;
    let trusted = fromSelf || state.admins.has(r.source);
    if (state.creator === undefined) {
      // A group this device does not have yet: only an admin's log that makes this account a
      // member creates it here.
      const trial = new GroupReplica(groupId, [...current.changes(), ...offered]).state();
      if (!fromSelf && !(trial.admins.has(r.source) && trial.members.has(self.aci))) return;
      trusted = true;
    }
    const accepted = offered.filter((c) => {
      if (c.kind.type === 'create' && state.creator !== undefined) return false;
      return trusted || c.author === r.source;
    });
    if (accepted.length === 0) return;
    this.apply(groupId, accepted, { local: false, announce: r.announce });
  }
}
