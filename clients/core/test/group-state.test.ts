// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientError } from '../src/errors.js';
import {
  GROUP_LIMITS,
  GroupReplica,
  checkGroupChange,
  checkGroupTitle,
  compareGroupChanges,
  replayGroup,
  type GroupChange,
  type GroupChangeKind,
  type GroupMemberRef,
  type GroupState,
} from '../src/engine/group-state.js';

const GROUP = 'ab'.repeat(32);

/** A deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function aciOf(n: number): string {
  const h = n.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${h}`;
}
const member = (n: number): GroupMemberRef => ({ aci: aciOf(n), address: `user${n}@example.org` });

let counter = 0;
function change(author: number, lamport: number, kind: GroupChangeKind, changeId?: string): GroupChange {
  counter++;
  return {
    changeId: changeId ?? counter.toString(16).padStart(32, '0'),
    lamport,
    author: aciOf(author),
    authorAddress: `user${author}@example.org`,
    timestamp: 1_700_000_000_000 + counter,
    kind,
  };
}

function plain(s: GroupState): unknown {
  return { title: s.title, members: [...s.members], admins: [...s.admins].sort(), revision: s.revision, applied: s.applied, creator: s.creator };
}

function shuffle<T>(list: readonly T[], rnd: () => number): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('group state: the rules of a replay', () => {
  it('makes the creator the only member and admin, with the title', () => {
    const s = replayGroup(GROUP, [change(1, 1, { type: 'create', title: 'climbing' })]);
    assert.equal(s.title, 'climbing');
    assert.deepEqual([...s.members], [[aciOf(1), 'user1@example.org']]);
    assert.deepEqual([...s.admins], [aciOf(1)]);
    assert.equal(s.creator, aciOf(1));
    assert.equal(s.revision, 1);
  });

  it('lets admins add and remove members, set the title and name admins', () => {
    const s = replayGroup(GROUP, [
      change(1, 1, { type: 'create', title: 'a' }),
      change(1, 2, { type: 'add-members', members: [member(2), member(3), member(4)] }),
      change(1, 3, { type: 'add-admins', members: [member(2)] }),
      change(2, 4, { type: 'set-title', title: 'b' }),
      change(2, 5, { type: 'remove-members', members: [member(3)] }),
    ]);
    assert.equal(s.title, 'b');
    assert.deepEqual([...s.members.keys()], [aciOf(1), aciOf(2), aciOf(4)]);
    assert.deepEqual([...s.admins].sort(), [aciOf(1), aciOf(2)]);
    assert.equal(s.applied.length, 5);
  });

  it('skips changes by members who are not admins, and by non-members', () => {
    const s = replayGroup(GROUP, [
      change(1, 1, { type: 'create', title: 'a' }),
      change(1, 2, { type: 'add-members', members: [member(2)] }),
      change(2, 3, { type: 'set-title', title: 'hijacked' }),
      change(2, 4, { type: 'add-members', members: [member(9)] }),
      change(2, 5, { type: 'add-admins', members: [member(2)] }),
      change(7, 6, { type: 'remove-members', members: [member(1)] }),
      change(7, 7, { type: 'leave' }),
    ]);
    assert.equal(s.title, 'a');
    assert.deepEqual([...s.members.keys()], [aciOf(1), aciOf(2)]);
    assert.deepEqual([...s.admins], [aciOf(1)]);
    assert.equal(s.revision, 7, 'skipped changes are still held');
    assert.equal(s.applied.length, 2);
  });

  it('lets any member leave, and drops its admin rights with it', () => {
    const s = replayGroup(GROUP, [
      change(1, 1, { type: 'create', title: 'a' }),
      change(1, 2, { type: 'add-members', members: [member(2), member(3)] }),
      change(1, 3, { type: 'add-admins', members: [member(3)] }),
      change(2, 4, { type: 'leave' }),
      change(3, 5, { type: 'leave' }),
    ]);
    assert.deepEqual([...s.members.keys()], [aciOf(1)]);
    assert.deepEqual([...s.admins], [aciOf(1)]);
  });

  it('counts only the first create; anything before it and any later create is skipped', () => {
    const early = change(2, 0, { type: 'set-title', title: 'before' });
    const create = change(1, 1, { type: 'create', title: 'real' });
    const takeover = change(2, 5, { type: 'create', title: 'mine now' });
    const s = replayGroup(GROUP, [takeover, early, create]);
    assert.equal(s.title, 'real');
    assert.equal(s.creator, aciOf(1));
    assert.deepEqual([...s.admins], [aciOf(1)]);
    assert.deepEqual(s.applied, [create.changeId]);
  });

  it('holds no member before a create arrives', () => {
    const s = replayGroup(GROUP, [change(1, 4, { type: 'add-members', members: [member(2)] })]);
    assert.equal(s.members.size, 0);
    assert.equal(s.creator, undefined);
    assert.equal(s.revision, 1);
  });

  it('promotes the earliest-added remaining member when the last admin leaves or is removed', () => {
    const base = [
      change(1, 1, { type: 'create', title: 'a' }),
      change(1, 2, { type: 'add-members', members: [member(5), member(3)] }),
      change(1, 3, { type: 'add-members', members: [member(4)] }),
    ];
    const left = replayGroup(GROUP, [...base, change(1, 4, { type: 'leave' })]);
    assert.deepEqual([...left.admins], [aciOf(5)], 'the first added, not the lowest ACI');
    const removedSelf = replayGroup(GROUP, [...base, change(1, 4, { type: 'remove-members', members: [member(1), member(5)] })]);
    assert.deepEqual([...removedSelf.admins], [aciOf(3)]);
  });

  it('refuses to demote every admin', () => {
    const s = replayGroup(GROUP, [
      change(1, 1, { type: 'create', title: 'a' }),
      change(1, 2, { type: 'add-members', members: [member(2)] }),
      change(1, 3, { type: 'remove-admins', members: [member(1)] }),
    ]);
    assert.deepEqual([...s.admins], [aciOf(1)]);
    assert.equal(s.applied.length, 2);
  });

  it('skips an add that would take the group past 1,000 members, whole', () => {
    const many = Array.from({ length: GROUP_LIMITS.maxMembers - 1 }, (_, i) => member(100 + i));
    const full = [change(1, 1, { type: 'create', title: 'a' }), change(1, 2, { type: 'add-members', members: many })];
    assert.equal(replayGroup(GROUP, full).members.size, GROUP_LIMITS.maxMembers);
    const over = replayGroup(GROUP, [...full, change(1, 3, { type: 'add-members', members: [member(5000), member(100)] })]);
    assert.equal(over.members.size, GROUP_LIMITS.maxMembers);
    assert.ok(!over.members.has(aciOf(5000)));
    // Re-adding someone already there is not growth.
    const same = replayGroup(GROUP, [...full, change(1, 3, { type: 'add-members', members: [member(100)] })]);
    assert.equal(same.applied.length, 3);
  });

  it('resolves a removed admin’s concurrent change by the order: before the removal it counts, after it is skipped', () => {
    const base = [
      change(1, 1, { type: 'create', title: 'start' }),
      change(1, 2, { type: 'add-members', members: [member(2), member(3)] }),
      change(1, 3, { type: 'add-admins', members: [member(2)] }),
    ];
    // Made at the same lamport without seeing each other: the author ACI breaks the tie.
    const removal = change(1, 5, { type: 'remove-members', members: [member(2)] });
    const tied = change(2, 5, { type: 'set-title', title: 'tied' });
    const s1 = replayGroup(GROUP, [tied, ...base, removal]);
    assert.equal(s1.title, 'start', 'user1 sorts before user2 at the same lamport: the removal comes first and the title is skipped');
    assert.ok(!s1.members.has(aciOf(2)));
    assert.ok(!s1.applied.includes(tied.changeId));
    // Made at a lower lamport (before the removal in the order), the removed admin's change counts.
    const earlier = change(2, 4, { type: 'set-title', title: 'earlier' });
    const s2 = replayGroup(GROUP, [removal, earlier, ...base]);
    assert.equal(s2.title, 'earlier');
    assert.ok(!s2.members.has(aciOf(2)));
  });

  it('lets concurrent title changes converge on the highest in the order', () => {
    const base = [change(1, 1, { type: 'create', title: 'a' }), change(1, 2, { type: 'add-members', members: [member(2)] }), change(1, 3, { type: 'add-admins', members: [member(2)] })];
    const t1 = change(1, 4, { type: 'set-title', title: 'one' });
    const t2 = change(2, 4, { type: 'set-title', title: 'two' });
    for (const order of [[t1, t2], [t2, t1]]) assert.equal(replayGroup(GROUP, [...base, ...order]).title, 'two');
  });

  it('counts a repeated change id once', () => {
    const c = change(1, 1, { type: 'create', title: 'a' });
    assert.equal(replayGroup(GROUP, [c, c, { ...c }]).revision, 1);
  });

  it('orders by lamport, then author ACI, then change id', () => {
    const a = change(2, 1, { type: 'leave' }, '0'.repeat(32));
    const b = change(1, 2, { type: 'leave' }, '0'.repeat(32));
    const c = change(2, 2, { type: 'leave' }, '0'.repeat(31) + '1');
    const d = change(2, 2, { type: 'leave' }, '0'.repeat(31) + '2');
    assert.deepEqual([d, c, b, a].sort(compareGroupChanges), [a, b, c, d]);
  });
});

describe('group state: checking changes from outside', () => {
  const good = (): GroupChange => change(1, 1, { type: 'create', title: '  Climbing club  ' });
  const refused = (c: unknown) => assert.throws(() => checkGroupChange(c as GroupChange), (e) => e instanceof ClientError && e.code === 'INVALID_ARGUMENT');

  it('accepts a well-formed change and trims its title, canonicalizes addresses', () => {
    const c = checkGroupChange({ ...good(), authorAddress: 'User1@Example.ORG' });
    assert.deepEqual(c.kind, { type: 'create', title: 'Climbing club' });
    assert.equal(c.authorAddress, 'user1@example.org');
  });

  it('refuses malformed ids, clocks, authors and addresses', () => {
    refused(null);
    refused({ ...good(), changeId: 'xyz' });
    refused({ ...good(), changeId: 'AB'.repeat(16) });
    refused({ ...good(), lamport: -1 });
    refused({ ...good(), lamport: 2 ** 53 });
    refused({ ...good(), lamport: 1.5 });
    refused({ ...good(), timestamp: -5 });
    refused({ ...good(), author: 'not-a-uuid' });
    refused({ ...good(), authorAddress: 'nobody' });
    refused({ ...good(), kind: { type: 'explode' } });
    refused({ ...good(), kind: undefined });
  });

  it('refuses empty, long and bidi-tricked titles', () => {
    refused({ ...good(), kind: { type: 'set-title', title: '   ' } });
    refused({ ...good(), kind: { type: 'set-title', title: 'x'.repeat(GROUP_LIMITS.maxTitleChars + 1) } });
    refused({ ...good(), kind: { type: 'set-title', title: 'evil\u202Etxt.exe' } });
    refused({ ...good(), kind: { type: 'set-title', title: 'two\nlines' } });
    assert.equal(checkGroupTitle('x'.repeat(GROUP_LIMITS.maxTitleChars)).length, GROUP_LIMITS.maxTitleChars);
  });

  it('refuses member lists that are empty, too long, repeat a member or hold a bad member', () => {
    refused({ ...good(), kind: { type: 'add-members', members: [] } });
    refused({ ...good(), kind: { type: 'add-members', members: [member(2), member(2)] } });
    refused({ ...good(), kind: { type: 'add-members', members: [{ aci: 'x', address: 'a@b.c' }] } });
    refused({ ...good(), kind: { type: 'remove-members', members: [{ aci: aciOf(3), address: '' }] } });
    refused({ ...good(), kind: { type: 'add-admins', members: Array.from({ length: GROUP_LIMITS.maxMembers + 1 }, (_, i) => member(i)) } });
  });
});

/**
 * Simulated devices: each makes changes from its own view (lamport one above what it has seen,
 * sometimes changes it may not make), changes travel between devices partially and out of
 * order, and at the end everyone gets everything in a random order.
 */
function simulate(seed: number, devices: number, steps: number): { replicas: GroupReplica[]; all: GroupChange[] } {
  const rnd = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const people = Array.from({ length: devices }, (_, i) => i + 1);
  const replicas = people.map(() => new GroupReplica(GROUP));
  const inbox: GroupChange[][] = people.map(() => []);
  const all: GroupChange[] = [];
  const create = change(1, 1, { type: 'create', title: 'start' });
  all.push(create);
  replicas[0]!.merge([create]);
  for (let i = 1; i < devices; i++) inbox[i]!.push(create);
  for (let step = 0; step < steps; step++) {
    const d = Math.floor(rnd() * devices);
    const replica = replicas[d]!;
    if (rnd() < 0.5 && inbox[d]!.length > 0) {
      // Deliver some of what is in flight to d, in a random order.
      const pending = shuffle(inbox[d]!, rnd);
      const n = 1 + Math.floor(rnd() * pending.length);
      for (const c of pending.slice(0, n)) replica.merge([c]);
      inbox[d] = pending.slice(n);
      continue;
    }
    const state = replica.state();
    const me = people[d]!;
    const others = people.filter((p) => p !== me);
    const lamport = state.maxLamport + 1;
    const r = rnd();
    let kind: GroupChangeKind;
    if (r < 0.2) kind = { type: 'set-title', title: `t${step}` };
    else if (r < 0.45) kind = { type: 'add-members', members: [member(pick(others)), member(pick(others))].filter((m, i, l) => l.findIndex((x) => x.aci === m.aci) === i) };
    else if (r < 0.6) kind = { type: 'remove-members', members: [member(pick(others))] };
    else if (r < 0.75) kind = { type: 'add-admins', members: [member(pick(people))] };
    else if (r < 0.85) kind = { type: 'remove-admins', members: [member(pick(people))] };
    else if (r < 0.95) kind = { type: 'leave' };
    else kind = { type: 'create', title: 'takeover' };
    const c = change(me, lamport, kind);
    all.push(c);
    replica.merge([c]);
    for (let i = 0; i < devices; i++) if (i !== d && rnd() < 0.8) inbox[i]!.push(c);
  }
  // Everything reaches everyone, each in its own random order, some in one batch.
  for (let i = 0; i < devices; i++) {
    const rest = shuffle(all, rnd);
    if (rnd() < 0.5) replicas[i]!.merge(rest);
    else for (const c of rest) replicas[i]!.merge([c]);
  }
  return { replicas, all };
}

describe('group state: convergence', () => {
  it('gives every device the same state, whatever order the changes arrived in (200 random histories)', () => {
    let applied = 0;
    let skipped = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const { replicas, all } = simulate(seed, 2 + (seed % 6), 60);
      const reference = replayGroup(GROUP, shuffle(all, prng(seed * 7)));
      for (const [i, r] of replicas.entries()) {
        assert.deepEqual(plain(r.state()), plain(reference), `seed ${seed}, device ${i}`);
      }
      applied += reference.applied.length;
      skipped += reference.revision - reference.applied.length;
    }
    // The histories must exercise both paths, or the test proves little.
    assert.ok(applied > 1000, `applied ${applied}`);
    assert.ok(skipped > 1000, `skipped ${skipped}`);
  });

  it('replays incrementally to the same state as from scratch after every single arrival', () => {
    for (let seed = 300; seed < 330; seed++) {
      const { all } = simulate(seed, 4, 40);
      const rnd = prng(seed);
      const replica = new GroupReplica(GROUP);
      const seen: GroupChange[] = [];
      for (const c of shuffle(all, rnd)) {
        replica.merge([c]);
        seen.push(c);
        assert.deepEqual(plain(replica.state()), plain(replayGroup(GROUP, seen)), `seed ${seed} after ${seen.length}`);
      }
    }
  });

  it('reports only new changes from a merge', () => {
    const a = change(1, 1, { type: 'create', title: 'a' });
    const b = change(1, 2, { type: 'set-title', title: 'b' });
    const r = new GroupReplica(GROUP, [a]);
    assert.deepEqual(r.merge([a, b, b]).map((c) => c.changeId), [b.changeId]);
    assert.deepEqual(r.merge([a, b]), []);
    assert.equal(r.size, 2);
    assert.ok(r.has(b.changeId));
  });
});
