// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The files of messages: each message's attachment pointers in order, with where this device
 * keeps the file. Rows belong to their message (deleted with it) and are written in the
 * transaction that stores the message, so a message never shows without its files.
 */
import type { Aci, MessageId } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, copyBytes } from './sql-values.js';
import { checkAci, checkInteger, checkMessageId } from './store-types.js';

/** Most files one message may carry. */
export const MAX_ATTACHMENTS_PER_MESSAGE = 100;

/** One file of a message. */
export interface AttachmentRecord {
  /** 0-based position in the message. */
  readonly index: number;
  /** 32 lowercase hex characters. */
  readonly blobId: string;
  /** The domain of the relay that stores the blob. */
  readonly domain: string;
  /** 64 bytes; secret. */
  readonly key: Uint8Array;
  /** SHA-256 of the encrypted blob, 32 bytes. */
  readonly digest: Uint8Array;
  /** Bytes of the file. */
  readonly size: number;
  readonly contentType: string;
  /** Sanitized base name. */
  readonly fileName: string;
  /** Where this device keeps the file, if it has it. */
  readonly localPath?: string;
}

/** An attachment with the message it belongs to. */
export interface MessageAttachment extends AttachmentRecord {
  readonly senderAci: Aci;
  readonly messageId: MessageId;
}

interface Row {
  sender_aci: string;
  message_id: string;
  idx: number;
  blob_id: string;
  domain: string;
  key: Uint8Array;
  digest: Uint8Array;
  size: number;
  content_type: string;
  file_name: string;
  local_path: string | null;
}

const COLUMNS = 'sender_aci, message_id, idx, blob_id, domain, key, digest, size, content_type, file_name, local_path';

function toRecord(r: Row): MessageAttachment {
  return {
    senderAci: r.sender_aci as Aci,
    messageId: r.message_id as MessageId,
    index: r.idx,
    blobId: r.blob_id,
    domain: r.domain,
    key: copyBytes(r.key),
    digest: copyBytes(r.digest),
    size: r.size,
    contentType: r.content_type,
    fileName: r.file_name,
    ...(r.local_path !== null ? { localPath: r.local_path } : {}),
  };
}

/** See the module comment. */
export class AttachmentStore {
  readonly #db: ClientDatabase;

  /** Over the client schema in `db`. */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /**
   * Stores the files of message (senderAci, messageId), numbered in order; a message that has
   * them already keeps its rows (a redelivery). The message must be stored.
   * @throws ClientError INVALID_ARGUMENT for a malformed record; NOT_FOUND without the message.
   */
  add(senderAci: Aci, messageId: MessageId, attachments: readonly Omit<AttachmentRecord, 'index'>[]): void {
    checkAci(senderAci, 'senderAci');
    checkMessageId(messageId);
    if (attachments.length > MAX_ATTACHMENTS_PER_MESSAGE) throw new ClientError('INVALID_ARGUMENT', `a message carries at most ${MAX_ATTACHMENTS_PER_MESSAGE} files`);
    this.#db.transaction(() => {
      attachments.forEach((a, index) => {
        if (!/^[0-9a-f]{32}$/.test(a.blobId)) throw new ClientError('INVALID_ARGUMENT', 'a blob id is 32 lowercase hex characters');
        if (a.key.length !== 64 || a.digest.length !== 32) throw new ClientError('INVALID_ARGUMENT', 'an attachment key is 64 bytes and its digest 32');
        try {
          this.#db.run(`INSERT OR IGNORE INTO attachments (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
            senderAci,
            messageId,
            index,
            a.blobId,
            a.domain,
            blob(a.key),
            blob(a.digest),
            checkInteger(a.size, 'size'),
            a.contentType,
            a.fileName,
            a.localPath ?? null,
          ]);
        } catch (err) {
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new ClientError('NOT_FOUND', 'no such message', { cause: err });
          throw err;
        }
      });
    });
  }

  /** The files of message (senderAci, messageId), in order. */
  forMessage(senderAci: string, messageId: string): MessageAttachment[] {
    return this.#db.all<Row>(`SELECT ${COLUMNS} FROM attachments WHERE sender_aci = ? AND message_id = ? ORDER BY idx`, [senderAci, messageId]).map(toRecord);
  }

  /** The files of every message with id `messageId` (any sender), by sender then position. */
  byMessageId(messageId: string): MessageAttachment[] {
    return this.#db.all<Row>(`SELECT ${COLUMNS} FROM attachments WHERE message_id = ? ORDER BY sender_aci, idx`, [messageId]).map(toRecord);
  }

  /** Records where this device keeps a file (or forgets it with undefined). Returns whether the file exists. */
  setLocalPath(senderAci: string, messageId: string, index: number, path: string | undefined): boolean {
    return (
      this.#db.run('UPDATE attachments SET local_path = ? WHERE sender_aci = ? AND message_id = ? AND idx = ?', [path ?? null, senderAci, messageId, index]).changes > 0
    );
  }
}
