// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Push tokens (DESIGN §10): at most one per device, the token the device's platform push
 * service (APNs or FCM) gave its app. Stored as the token itself, not a hash: the relay must
 * present it to the provider. A token is one app install, so it is unique per provider: a device
 * that registers a token another device holds takes it over. The row goes with its device.
 */
import type { Migration } from '../migrate.js';

/** The `push_tokens` table. */
export const migration0002PushTokens: Migration = {
  name: '0002-push-tokens',
  sql: `
CREATE TABLE push_tokens (
  aci TEXT NOT NULL,
  device_id INTEGER NOT NULL,
  provider TEXT NOT NULL CHECK (provider IN ('apns', 'fcm')),
  token TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (aci, device_id),
  UNIQUE (provider, token),
  FOREIGN KEY (aci, device_id) REFERENCES devices (aci, device_id) ON DELETE CASCADE
) STRICT;
`,
};
