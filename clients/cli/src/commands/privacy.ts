// SPDX-License-Identifier: AGPL-3.0-only
/** Receipts, typing, presence and the privacy settings: read, receipts, settings, typing, presence. */
import { CliError } from '../errors.js';
import type { PrivacySettings } from '../engine-contract.js';
import { formatPresence, formatReceipt, formatSettings } from '../format.js';
import { markReadJson, presenceJson, receiptJson, settingsJson, typingResultJson } from '../json-views.js';
import { type Session, conversationName, requireAccount } from '../session.js';

/** `parley read <address>`: marks the conversation read, sending read receipts (unless off) and a read sync. */
export async function readCommand(s: Session, address: string): Promise<void> {
  const account = requireAccount(s);
  s.context.address = conversationName(address, account);
  const r = await s.client.markRead(address);
  const n = r.messageIds.length;
  s.out.data(
    markReadJson(r),
    n === 0 ? `nothing unread with ${r.conversation}` : `marked ${n} message${n === 1 ? '' : 's'} read with ${r.conversation}`,
  );
  if (n > 0 && r.receipts === 0 && !s.client.settings().readReceipts) s.out.note('read receipts are off: nobody was told (parley settings read-receipts on)');
}

/** Options of `parley receipts`. */
export interface ReceiptsOptions {
  readonly messageId?: string;
  readonly limit?: number;
}

/** `parley receipts <address> [--message ID] [--limit N]`: per-recipient state of one's own messages, newest first. */
export async function receiptsCommand(s: Session, address: string, options: ReceiptsOptions): Promise<void> {
  const account = requireAccount(s);
  s.context.address = conversationName(address, account);
  const rows = s.client.receipts(address, {
    ...(options.messageId !== undefined ? { messageId: options.messageId } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
  });
  for (const r of rows) s.out.data(receiptJson(r), formatReceipt(r));
  if (rows.length === 0) s.out.note(`you sent no messages to ${s.context.address} yet`);
}

/** The names `parley settings` takes, and the switch each sets. */
export const SETTING_NAMES: Readonly<Record<string, keyof PrivacySettings>> = {
  'read-receipts': 'readReceipts',
  typing: 'typingIndicators',
  presence: 'presence',
};

/**
 * The changes of `parley settings NAME on|off …`.
 * @throws CliError USAGE for an unknown name, a value other than on/off, or a name without value.
 */
export function parseSettingChanges(words: readonly string[]): Partial<PrivacySettings> {
  if (words.length % 2 !== 0) throw new CliError('USAGE', `${words.at(-1)} needs on or off, e.g. parley settings typing off`);
  const changes: Partial<Record<keyof PrivacySettings, boolean>> = {};
  for (let i = 0; i < words.length; i += 2) {
    const name = words[i]!;
    const value = words[i + 1]!;
    const key = SETTING_NAMES[name];
    if (!key) throw new CliError('USAGE', `unknown setting ${JSON.stringify(name)}: the settings are ${Object.keys(SETTING_NAMES).join(', ')}`);
    if (value !== 'on' && value !== 'off') throw new CliError('USAGE', `${name} is on or off, not ${JSON.stringify(value)}`);
    changes[key] = value === 'on';
  }
  return changes;
}

/** `parley settings [NAME on|off …]`: prints the settings, after changing the named ones. */
export async function settingsCommand(s: Session, words: readonly string[]): Promise<void> {
  requireAccount(s);
  const changes = parseSettingChanges(words);
  const settings = Object.keys(changes).length > 0 ? await s.client.updateSettings(changes) : s.client.settings();
  s.out.data(settingsJson(settings), formatSettings(settings));
}

/** `parley typing <address> [--stop]`: one typing indicator, online-only. */
export async function typingCommand(s: Session, address: string, stop: boolean): Promise<void> {
  const account = requireAccount(s);
  s.context.address = conversationName(address, account);
  const action = stop ? 'stopped' : 'started';
  const r = await s.client.typing(address, action);
  const human = r.sent
    ? `told ${s.context.address} you ${stop ? 'stopped typing' : 'are typing'} (${r.devices} device${r.devices === 1 ? '' : 's'} online got it)`
    : r.reason === 'off'
      ? 'typing indicators are off: nothing sent (parley settings typing on)'
      : 'not sent: a typing indicator went to this conversation less than 3 s ago';
  s.out.data(typingResultJson(action, r), human);
}

/** Options of `parley presence`. */
export interface PresenceOptions {
  readonly state?: 'online' | 'away';
  readonly rotateToken: boolean;
}

/** `parley presence [--away|--online] [--rotate-token]`: sets this device's state, then lists contacts' presence. */
export async function presenceCommand(s: Session, options: PresenceOptions): Promise<void> {
  requireAccount(s);
  if (options.rotateToken) {
    await s.client.rotatePresenceToken();
    s.out.note('made a new presence token: contacts see your presence again once you message them');
  }
  if (options.state !== undefined) {
    s.client.setPresence(options.state);
    s.out.note(`this device shows as ${options.state} whenever it is connected`);
  }
  const list = await s.client.presence();
  for (const p of list) s.out.data(presenceJson(p), formatPresence(p));
  if (list.length === 0) s.out.note('no contacts yet');
}
