import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type nodemailer from 'nodemailer';
import type { SendMailOptions } from 'nodemailer';
import type { Config } from '../../config.js';
import { PREFERENCES_PATH, linkOf, renderEmail } from './email-templates.js';
import type { Category, Notice } from './events.js';

/**
 * The email channel: one Notice to one person, through SMTP_URL (a pooled connection to the provider), as an .eml
 * file under DATA_DIR/mail in development without it, or nowhere in staging and production without it (logged
 * once at start: a review app or staging without a mail add-on still runs, with in-app, stream and webhooks).
 * It never retries by itself: the worker owns retries and reads `retryable` off what `send` throws.
 */

export interface MailLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface Recipient {
  email: string;
  name: string;
}

export interface Mailer {
  /** How messages leave: `smtp`, `file` (development .eml files) or `off` (deployed without SMTP_URL). */
  readonly mode: 'smtp' | 'file' | 'off';
  /** Resolves once the SMTP server accepted the message (or the file is written); throws MailDeliveryError. */
  send(notice: Notice, to: Recipient, category: Category | null): Promise<void>;
  close(): Promise<void>;
}

export interface MailerOptions {
  /** TCP connect, then the server's greeting (ms). Default 10 000 each. */
  connectionTimeoutMs?: number;
  greetingTimeoutMs?: number;
  /** Silence on an open connection, mid-command (ms). Default 30 000. */
  socketTimeoutMs?: number;
  /** Longest one send may take in all, queueing for a pooled connection included (ms). Default 60 000. */
  sendTimeoutMs?: number;
  /** Pooled connections kept open to the provider. Default 5. */
  maxConnections?: number;
}

/**
 * What `send` throws. `retryable: false` means this message to this recipient will be refused again (a 5xx reply
 * such as 550 "no such user"): the worker dead-letters it at once. Everything else (refused or timed-out
 * connections, 4xx replies, TLS or authentication trouble that an operator fixes) is worth another attempt.
 */
export class MailDeliveryError extends Error {
  readonly retryable: boolean;
  /** Nodemailer's code: ECONNECTION, ETIMEDOUT, ESOCKET, EENVELOPE, EMESSAGE, EAUTH, … */
  readonly code?: string;
  readonly responseCode?: number;
  /** The server's reply, as is: for the operator's log (it may name the recipient's address, never a secret). */
  readonly response?: string;

  constructor(message: string, opts: { retryable: boolean; code?: string; responseCode?: number; response?: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'MailDeliveryError';
    this.retryable = opts.retryable;
    this.code = opts.code;
    this.responseCode = opts.responseCode;
    this.response = opts.response;
  }
}

interface NodemailerFailure extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  permanent?: boolean;
  command?: string;
  originalCode?: string;
}

/**
 * Permanent only when the server refused this message for good: a 5xx reply (RFC 5321), which nodemailer marks
 * `permanent` (503, a session out of step, is not). A refused login or TLS failure is the same for every message
 * and fixed by an operator, so the queue's retries keep the messages until then instead of dropping them all.
 */
export function classify(err: unknown): MailDeliveryError {
  if (err instanceof MailDeliveryError) return err;
  const e = (err ?? {}) as NodemailerFailure;
  const code = e.code;
  const configuration = code === 'EAUTH' || code === 'ENOAUTH' || code === 'ETLS' || code === 'EREQUIRETLS';
  // Refused before any server saw it: the recipient's address itself is unusable, and will stay so.
  const badAddress = code === 'EENVELOPE' && e.responseCode === undefined;
  const permanent =
    badAddress || (!configuration && (e.permanent ?? (typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode !== 503)));
  const what = e.responseCode
    ? `SMTP server refused ${e.command ?? 'the message'} with ${e.responseCode}`
    : `SMTP delivery failed (${[code, e.originalCode].filter(Boolean).join('/') || (e instanceof Error ? e.name : 'error')})`;
  return new MailDeliveryError(what, {
    retryable: !permanent,
    code,
    responseCode: e.responseCode,
    response: typeof e.response === 'string' ? e.response.slice(0, 500) : undefined,
    cause: err,
  });
}

/** The domain of MAIL_FROM, for Message-IDs: `<notice-id@domain>`. */
/**
 * A transport made with the first message, not with the app: importing nodemailer takes about 0.09 s of every
 * process start (figure 6), and only the worker sends mail. An ESLint rule keeps src/ off a value import of it.
 */
function onFirstUse<T>(make: (mailer: typeof nodemailer) => T): { get: () => Promise<T>; made: () => Promise<T> | undefined } {
  let made: Promise<T> | undefined;
  return { get: () => (made ??= import('nodemailer').then((mailer) => make(mailer.default))), made: () => made };
}

function domainOf(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return address.split('@').pop()?.trim() || 'localhost';
}

export function createMailer(config: Pick<Config, 'environment' | 'appUrl' | 'dataDir' | 'mail'>, log: MailLogger, options: MailerOptions = {}): Mailer {
  const { smtp, from } = config.mail;
  const deployed = config.environment !== 'development';
  const sendTimeoutMs = options.sendTimeoutMs ?? 60_000;

  /** One message: rendered once, the same for SMTP and for the file. */
  const compose = (notice: Notice, to: Recipient, category: Category | null): SendMailOptions => {
    const email = renderEmail(notice, { appUrl: config.appUrl, recipientName: to.name, category });
    return {
      from,
      // Only the recipient: never a Cc, a Bcc or a Reply-To carrying someone else's address.
      to: { name: to.name, address: to.email },
      subject: email.subject,
      text: email.text,
      html: email.html,
      // The same notice sent twice (at-least-once) carries the same Message-ID, which mail clients collapse.
      messageId: `<${notice.id}@${domainOf(from)}>`,
      // When it happened, not when a retry finally got through; now if the notice's time is unreadable.
      date: Number.isNaN(Date.parse(notice.createdAt)) ? new Date() : new Date(notice.createdAt),
      headers: {
        // RFC 3834: automatic, so auto-replies and vacation notices are not sent back.
        'Auto-Submitted': 'auto-generated',
        'X-Kendalls-Event': `${notice.type}; id=${notice.eventId}`,
      },
      // Only categories the preferences can switch off. A page, not one-click (no List-Unsubscribe-Post): the
      // link needs the person signed in, which a mail provider's automated POST is not.
      ...(category ? { list: { unsubscribe: linkOf(config.appUrl, `${PREFERENCES_PATH}?category=${category}`) } } : {}),
    };
  };

  if (smtp) {
    const pool = onFirstUse((nodemailer) => {
      const transport = nodemailer.createTransport({
        pool: true,
        maxConnections: options.maxConnections ?? 5,
        maxMessages: 100,
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure,
        // Deployed, credentials never cross the network in clear: STARTTLS or no connection.
        requireTLS: deployed && !smtp.secure,
        auth: smtp.user ? { user: smtp.user, pass: smtp.pass ?? '' } : undefined,
        connectionTimeout: options.connectionTimeoutMs ?? 10_000,
        greetingTimeout: options.greetingTimeoutMs ?? 10_000,
        socketTimeout: options.socketTimeoutMs ?? 30_000,
        dnsTimeout: options.connectionTimeoutMs ?? 10_000,
        logger: false,
      });
      // A pooled connection that fails between messages is reported here; the next send opens another.
      transport.on('error', (err) => log.warn({ err: classify(err) }, 'SMTP pool connection failed'));
      return transport;
    });
    return {
      mode: 'smtp',
      async send(notice, to, category) {
        try {
          await (await pool.get()).sendMail({ ...compose(notice, to, category), signal: AbortSignal.timeout(sendTimeoutMs) });
        } catch (err) {
          throw classify(err);
        }
      },
      async close() {
        (await pool.made()?.catch(() => undefined))?.close();
      },
    };
  }

  if (deployed) {
    log.warn({ channel: 'email' }, 'SMTP_URL is not set: email notifications are off (in-app, stream and webhooks still run)');
    return { mode: 'off', async send() {}, async close() {} };
  }

  const dir = path.join(config.dataDir, 'mail');
  const files = onFirstUse((nodemailer) => nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' }));
  return {
    mode: 'file',
    async send(notice, to, category) {
      let file: string;
      try {
        const info = await (await files.get()).sendMail(compose(notice, to, category));
        await mkdir(dir, { recursive: true });
        // Time first so `ls` lists them in order; the notice id last, so a re-sent notice is recognisable.
        file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${notice.id}.eml`);
        await writeFile(file, info.message as Buffer);
      } catch (err) {
        throw classify(err);
      }
      log.info({ file, notice_id: notice.id, type: notice.type }, `email written to ${file}`);
    },
    async close() {},
  };
}
