// SPDX-License-Identifier: AGPL-3.0-only
/**
 * What one does to messages after sending them, and to contacts: edit, delete, react, reply,
 * expire (disappearing messages), block, unblock, blocked.
 */
import { CliError } from '../errors.js';
import { formatBlocked, formatMessage, formatTimer } from '../format.js';
import { blockedJson, messageJson } from '../json-views.js';
import { type Session, conversationName, fullAddress, requireAccount } from '../session.js';
import { readStdinText } from './messages.js';

/** `text`, or stdin for `-`; refused when empty. */
async function textOf(s: Session, text: string): Promise<string> {
  const t = text === '-' ? await readStdinText(s.rt.stdin) : text;
  if (t.trim().length === 0) throw new CliError('USAGE', 'the text is empty');
  return t;
}

/** `parley edit <address> <messageId> <text>`: one's own message, within 24 hours. */
export async function editCommand(s: Session, address: string, messageId: string, text: string): Promise<void> {
  s.context.address = conversationName(address, requireAccount(s));
  const m = await s.client.editMessage(address, messageId, await textOf(s, text));
  s.out.data(messageJson(m), formatMessage(m));
}

/** `parley delete <address> <messageId> [--local]`. */
export async function deleteCommand(s: Session, address: string, messageId: string, local: boolean): Promise<void> {
  s.context.address = conversationName(address, requireAccount(s));
  const m = await s.client.deleteMessage(address, messageId, { local });
  s.out.data(messageJson(m), local ? `deleted message ${m.id} on this device` : formatMessage(m));
}

/** `parley react <address> <messageId> <emoji> [--remove]`. */
export async function reactCommand(s: Session, address: string, messageId: string, emoji: string | undefined, remove: boolean): Promise<void> {
  s.context.address = conversationName(address, requireAccount(s));
  const m = await s.client.react(address, messageId, emoji ?? '', { remove });
  s.out.data(messageJson(m), formatMessage(m));
}

/** `parley reply <address> <messageId> <text>`. */
export async function replyCommand(s: Session, address: string, messageId: string, text: string): Promise<void> {
  s.context.address = conversationName(address, requireAccount(s));
  const m = await s.client.reply(address, messageId, await textOf(s, text));
  s.out.data(messageJson(m), formatMessage(m));
  if (m.status === 'pending') s.out.note('not delivered yet: the message stays in the outbox and goes out with the next send, receive or listen');
}

/** `parley expire <address> [time]`: sets the timer, or shows it without `time`. */
export async function expireCommand(s: Session, address: string, seconds: number | undefined): Promise<void> {
  const peer = conversationName(address, requireAccount(s));
  s.context.address = peer;
  if (seconds === undefined) {
    const current = s.client.expireTimer(address);
    s.out.data({ conversation: peer, seconds: current }, `disappearing messages with ${peer}: ${formatTimer(current)}`);
    return;
  }
  const notice = await s.client.setExpireTimer(address, seconds);
  s.out.data(messageJson(notice), formatMessage(notice));
}

/** `parley block <address>`. */
export async function blockCommand(s: Session, address: string): Promise<void> {
  s.context.address = fullAddress(address, requireAccount(s));
  const b = await s.client.block(address);
  s.out.data({ ...blockedJson(b), blocked: true }, `blocked ${b.address}: their messages are dropped and nothing is sent to them`);
}

/** `parley unblock <address>`. */
export async function unblockCommand(s: Session, address: string): Promise<void> {
  const peer = fullAddress(address, requireAccount(s));
  s.context.address = peer;
  await s.client.unblock(address);
  s.out.data({ address: peer, blocked: false }, `unblocked ${peer}`);
}

/** `parley blocked`. */
export async function blockedCommand(s: Session): Promise<void> {
  requireAccount(s);
  const list = s.client.blocked();
  for (const b of list) s.out.data(blockedJson(b), formatBlocked(b));
  if (list.length === 0) s.out.note('nobody is blocked');
}
