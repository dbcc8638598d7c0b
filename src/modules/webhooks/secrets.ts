import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Signing secrets at rest. The API must sign with them, so they cannot be hashed: they are encrypted with
 * AES-256-GCM under WEBHOOK_ENCRYPTION_KEYS (config.ts), bound to their subscription's id (the additional
 * data), so a secret copied onto another row does not decrypt. Several keys may be configured: the first
 * encrypts, any decrypts, which lets an operator replace the key without a migration. A database dump alone
 * then reveals no secret.
 */

/** A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64 (the form `new Webhook(secret)` reads). */
export const newSigningSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

const keyId = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8);

/**
 * The key development uses when none is configured: public, so it protects nothing, but the code path is the
 * one production takes. Staging and production refuse to manage webhooks without a key of their own.
 */
export const DEVELOPMENT_KEY = createHash('sha256').update("kendall's nails development webhook key (not secret)").digest();

export interface SecretBox {
  seal(secret: string, subscriptionId: string): string;
  open(sealed: string, subscriptionId: string): string;
}

export function createSecretBox(keys: Buffer[]): SecretBox {
  if (keys.length === 0 || keys.some((k) => k.length !== 32)) throw new Error('webhook encryption keys must be 32 bytes each');
  const byId = new Map(keys.map((k) => [keyId(k), k]));
  const current = keys[0]!;
  const currentId = keyId(current);
  return {
    seal(secret, subscriptionId) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      cipher.setAAD(Buffer.from(subscriptionId));
      const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
      return ['v1', currentId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
    },
    open(sealed, subscriptionId) {
      const [version, kid, iv, tag, body] = sealed.split('.');
      const key = kid === undefined ? undefined : byId.get(kid);
      if (version !== 'v1' || !key || !iv || !tag || body === undefined) {
        // Never the sealed value itself in the message: it ends up in logs.
        throw new Error(`webhook secret of ${subscriptionId} was sealed with a key that is not configured (key id ${kid ?? 'none'})`);
      }
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(subscriptionId));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    },
  };
}
