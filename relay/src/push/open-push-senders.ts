// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Opens the push senders the config names, for the composition root (`bin/main.ts`): APNs when
 * its credentials are given, FCM when a service account is, and the log adapter for a provider
 * without credentials (a device may still register such a token; its wake-ups are logged).
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { ConfigError } from '../config.js';
import type { PushProviderName, PushSender } from '../ports/push-sender.js';
import { createApnsPushSender } from './apns-push-sender.js';
import { createFcmPushSender, parseServiceAccount } from './fcm-push-sender.js';
import { createLogPushSender } from './log-push-sender.js';
import { parseHostPort, type PushConfig } from './push-config.js';

function readSecretFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Whether `pem` is a private key of the given kind (EC P-256 or RSA); never says why (that could quote the key). */
function isPrivateKey(pem: string, kind: 'ec-p256' | 'rsa'): boolean {
  try {
    const key = createPrivateKey(pem);
    return kind === 'rsa' ? key.asymmetricKeyType === 'rsa' : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  } catch {
    return false;
  }
}

/**
 * One sender per provider.
 * @throws ConfigError naming the flag and file when a credential file is unreadable or not what
 * it should be (never printing its content).
 */
export function openPushSenders(config: PushConfig, deps: { readonly clock: Clock; readonly log: Logger }): Record<PushProviderName, PushSender> {
  let apns: PushSender;
  if (config.pushApnsKeyFile !== undefined) {
    const key = readSecretFile('--push-apns-key-file', config.pushApnsKeyFile);
    if (!isPrivateKey(key, 'ec-p256')) throw new ConfigError(`--push-apns-key-file ${config.pushApnsKeyFile} is not an EC P-256 private key in PEM (the .p8 file Apple issues)`);
    const endpoint = config.pushApnsEndpoint === undefined ? undefined : parseHostPort(config.pushApnsEndpoint);
    const ca = config.pushApnsCaFile === undefined ? undefined : readSecretFile('--push-apns-ca-file', config.pushApnsCaFile);
    apns = createApnsPushSender({
      key,
      keyId: config.pushApnsKeyId!,
      teamId: config.pushApnsTeamId!,
      topic: config.pushApnsTopic!,
      production: config.pushApnsEnvironment === 'production',
      ...(endpoint ? { host: endpoint.host, port: endpoint.port } : {}),
      ...(ca !== undefined ? { ca } : {}),
      clock: deps.clock,
    });
  } else {
    apns = createLogPushSender({ log: deps.log, provider: 'apns' });
  }
  let fcm: PushSender;
  if (config.pushFcmServiceAccountFile !== undefined) {
    const file = config.pushFcmServiceAccountFile;
    let account;
    try {
      account = parseServiceAccount(readSecretFile('--push-fcm-service-account-file', file));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`--push-fcm-service-account-file ${file}: ${(err as Error).message}`);
    }
    if (!isPrivateKey(account.privateKey, 'rsa')) throw new ConfigError(`--push-fcm-service-account-file ${file}: private_key is not an RSA private key in PEM`);
    fcm = createFcmPushSender({ account, ...(config.pushFcmProjectId ? { projectId: config.pushFcmProjectId } : {}), clock: deps.clock });
  } else {
    fcm = createLogPushSender({ log: deps.log, provider: 'fcm' });
  }
  return { apns, fcm };
}
