// SPDX-License-Identifier: AGPL-3.0-only
/**
 * What a push token may look like, per provider, checked before anything is stored. The relay
 * puts an APNs token into a URL path (`/3/device/<token>`) and hands an FCM token to
 * firebase-admin, so only the characters each provider uses are accepted.
 */
import { ParleyError, type PushProvider, type PushTokenRequest } from '@parley/protocol';

/** Longest push token accepted, characters (FCM tokens are about 160 today). */
export const MAX_PUSH_TOKEN_CHARS = 4096;

/** APNs device tokens: hex, 32 bytes today; Apple says they may grow, so up to 100 bytes. */
export const APNS_TOKEN_PATTERN = /^(?:[0-9a-fA-F]{2}){32,100}$/;

/** FCM registration tokens: base64url-like text with `:`, at least 32 characters. */
export const FCM_TOKEN_PATTERN = new RegExp(`^[A-Za-z0-9_:.-]{32,${MAX_PUSH_TOKEN_CHARS}}$`);

/** A push token as stored. */
export interface ParsedPushToken {
  readonly provider: PushProvider;
  /** APNs tokens in lowercase, FCM tokens as given. */
  readonly token: string;
}

/**
 * Checks a registration request (after the route's schema checked its shape).
 * @throws ParleyError BAD_REQUEST naming what is wrong (never echoing the token).
 */
export function parsePushToken(body: PushTokenRequest): ParsedPushToken {
  if (body.provider === 'apns') {
    if (!APNS_TOKEN_PATTERN.test(body.token)) throw new ParleyError('BAD_REQUEST', 'an APNs token is 64 to 200 hex characters');
    return { provider: 'apns', token: body.token.toLowerCase() };
  }
  if (body.provider === 'fcm') {
    if (!FCM_TOKEN_PATTERN.test(body.token)) throw new ParleyError('BAD_REQUEST', `an FCM token is 32 to ${MAX_PUSH_TOKEN_CHARS} characters of A-Z a-z 0-9 _ : . -`);
    return { provider: 'fcm', token: body.token };
  }
  throw new ParleyError('BAD_REQUEST', 'provider must be apns or fcm');
}
