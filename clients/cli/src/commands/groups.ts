// SPDX-License-Identifier: AGPL-3.0-only
/** Group commands: create, add, remove, leave, admins, title, info, list. */
import { CliError } from '../errors.js';
import type { GroupView } from '../engine-contract.js';
import { formatGroup, formatGroupLine } from '../format.js';
import { groupJson } from '../json-views.js';
import { type Session, requireAccount } from '../session.js';

function show(s: Session, g: GroupView): void {
  s.out.data(groupJson(g), formatGroup(g));
}

/** `parley group create <title> [members…]`. */
export async function groupCreateCommand(s: Session, title: string, members: readonly string[]): Promise<void> {
  requireAccount(s);
  if (title.trim().length === 0) throw new CliError('USAGE', 'the group title is empty');
  const g = await s.client.createGroup(title, members);
  show(s, g);
  s.out.note(`created #${g.id.slice(0, 8)}; send to it with: parley send '#${g.id.slice(0, 8)}' "hello"`);
}

/** `parley group add <group> <address…>`. */
export async function groupAddCommand(s: Session, group: string, members: readonly string[]): Promise<void> {
  requireAccount(s);
  s.context.address = group;
  show(s, await s.client.addGroupMembers(group, members));
}

/** `parley group remove <group> <address…>`. */
export async function groupRemoveCommand(s: Session, group: string, members: readonly string[]): Promise<void> {
  requireAccount(s);
  s.context.address = group;
  show(s, await s.client.removeGroupMembers(group, members));
}

/** `parley group leave <group>`. */
export async function groupLeaveCommand(s: Session, group: string): Promise<void> {
  requireAccount(s);
  s.context.address = group;
  show(s, await s.client.leaveGroup(group));
  s.out.note('you left the group; its history stays on this device');
}

/** `parley group admins <group> --add|--remove <address…>`. */
export async function groupAdminsCommand(s: Session, group: string, change: { add?: readonly string[]; remove?: readonly string[] }): Promise<void> {
  requireAccount(s);
  s.context.address = group;
  show(s, await s.client.changeGroupAdmins(group, change));
}

/** `parley group title <group> <title>`. */
export async function groupTitleCommand(s: Session, group: string, title: string): Promise<void> {
  requireAccount(s);
  if (title.trim().length === 0) throw new CliError('USAGE', 'the group title is empty');
  s.context.address = group;
  show(s, await s.client.setGroupTitle(group, title));
}

/** `parley group info <group>`. */
export async function groupInfoCommand(s: Session, group: string): Promise<void> {
  requireAccount(s);
  s.context.address = group;
  show(s, s.client.group(group));
}

/** `parley group list`. */
export async function groupListCommand(s: Session): Promise<void> {
  requireAccount(s);
  const groups = s.client.groups();
  for (const g of groups) s.out.data(groupJson(g), formatGroupLine(g));
  if (groups.length === 0) s.out.note('no groups yet: create one with parley group create <title> [members…]');
}
