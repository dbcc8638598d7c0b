import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { type Config, ConfigError, loadConfig } from '../src/config.js';
import { CATEGORY_OF, EVENT_TYPES, type EventType, type Notice } from '../src/modules/notifications/events.js';
import { MailDeliveryError, type Mailer, type MailLogger, createMailer } from '../src/modules/notifications/mailer.js';
import { freePort } from './support/process.js';
import { TestSmtp } from './support/smtp.js';

/**
 * The email channel (issue 16) against a real SMTP server started here (`smtp-server`), reading back what arrived
 * with `mailparser`: every event type, what each must say, what it must never say, and how failures are told apart.
 */

const APP_URL = 'https://app.kendallsnails.example';
const RECIPIENT = { email: 'dana.customer@example.com', name: 'Dana' };
const ORDER_ID = '6f1c1b7e-3f9a-4a12-bc00-000000000001';

const STATUS_AFTER: Partial<Record<EventType, string>> = {
  'order.submitted': 'submitted',
  'order.assigned': 'under_review',
  'order.accepted': 'accepted',
  'order.rejected': 'rejected',
  'order.revised': 'under_review',
  'order.paid': 'accepted',
  'order.in_production': 'in_production',
  'order.shipped': 'shipped',
  'order.delivered': 'delivered',
  'message.created': 'in_production',
};
const STATUS_LABEL: Record<string, string> = {
  submitted: 'Submitted',
  under_review: 'Under review',
  accepted: 'Accepted',
  rejected: 'Rejected',
  in_production: 'In production',
  shipped: 'Shipped',
  delivered: 'Delivered',
};

function noticeFor(type: EventType, order?: Partial<NonNullable<Notice['order']>>): Notice {
  const status = STATUS_AFTER[type];
  return {
    id: randomUUID(),
    eventId: randomUUID(),
    type,
    recipientId: randomUUID(),
    createdAt: '2026-12-02T05:00:00.000Z',
    title: status ? `Order #3F9A12BC: ${type}` : `Something about your design (${type})`,
    body: `What happened: ${type}.`,
    link: status ? `/orders/${ORDER_ID}` : type === 'technician.invited' ? '/invitations/accept' : '/designs/d-1',
    order: status ? { id: ORDER_ID, number: '3F9A12BC', status, ...order } : undefined,
  };
}

function configFor(env: Record<string, string>): Config {
  return loadConfig({ APP_URL, ...env });
}

function recordingLog() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const log: MailLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
  };
  return { log, lines };
}

const header = (mail: { parsed: { headers: Map<string, unknown> } }, name: string) => mail.parsed.headers.get(name);
const addresses = (field: unknown) =>
  ([] as Array<{ value: Array<{ address?: string }> }>).concat((field ?? []) as never).flatMap((a) => a.value.map((v) => v.address));

async function rejection(promise: Promise<unknown>): Promise<MailDeliveryError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MailDeliveryError, `expected a MailDeliveryError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the send to fail');
}

describe('email channel (nodemailer over SMTP_URL)', () => {
  let smtp: TestSmtp;
  let mailer: Mailer;

  before(async () => {
    smtp = await TestSmtp.start({ refuseRecipient: (a) => (a.startsWith('gone') ? 550 : a.startsWith('busy') ? 451 : undefined) });
    mailer = createMailer(configFor({ SMTP_URL: smtp.url(), MAIL_FROM: "Kendall's Nails <notifications@kendallsnails.example>" }), recordingLog().log);
  });
  after(async () => {
    await mailer.close();
    await smtp.stop();
  });

  it('sends every event type with a text and an HTML part, to the recipient only', async () => {
    assert.equal(mailer.mode, 'smtp');
    for (const type of EVENT_TYPES) {
      const notice = noticeFor(type, { total_price_cents: 4250, currency: 'USD', feedback: 'Too many colours', carrier: 'UPS', tracking_number: '1Z999' });
      const before = smtp.received.length;
      await mailer.send(notice, RECIPIENT, CATEGORY_OF[type]);
      assert.equal(smtp.received.length, before + 1, type);
      const mail = smtp.received.at(-1)!;
      const { parsed } = mail;

      assert.deepEqual(mail.envelope.to, [RECIPIENT.email], type);
      assert.equal(mail.envelope.from, 'notifications@kendallsnails.example');
      assert.deepEqual(addresses(parsed.to), [RECIPIENT.email], type);
      assert.equal(parsed.cc, undefined, type);
      assert.equal(parsed.bcc, undefined, type);
      assert.equal(parsed.replyTo, undefined, type);
      assert.equal(parsed.from?.value[0]?.address, 'notifications@kendallsnails.example');
      assert.equal(parsed.from?.value[0]?.name, "Kendall's Nails");

      assert.ok(parsed.text && parsed.text.includes(notice.body), `${type}: text part`);
      assert.ok(typeof parsed.html === 'string' && parsed.html.includes('<html'), `${type}: HTML part`);
      const link = `${APP_URL}${notice.link}`;
      assert.ok(parsed.text.includes(link), `${type}: link in text`);
      assert.ok(parsed.html.includes(`href="${link}"`), `${type}: link in HTML`);
      assert.ok(parsed.text.startsWith('Hi Dana,'), type);

      // Message-ID from the notice id: a re-sent notice is recognisable as the same message.
      assert.equal(parsed.messageId, `<${notice.id}@kendallsnails.example>`, type);
      assert.equal(header(mail, 'auto-submitted'), 'auto-generated');
      assert.equal(parsed.date?.toISOString(), notice.createdAt, type);

      if (notice.order) {
        assert.ok(parsed.subject?.startsWith('Order #3F9A12BC · '), `${type}: ${parsed.subject}`);
        assert.ok(parsed.subject!.includes(STATUS_LABEL[notice.order.status]!), `${type}: status in ${parsed.subject}`);
        assert.ok(parsed.text.includes('Order: #3F9A12BC'), type);
        assert.ok(parsed.text.includes(`Status: ${STATUS_LABEL[notice.order.status]}`), type);
      } else {
        assert.equal(parsed.subject, notice.title, type);
      }

      const unsubscribe = (header(mail, 'list') as { unsubscribe?: { url?: string } } | undefined)?.unsubscribe;
      if (CATEGORY_OF[type]) {
        assert.equal(unsubscribe?.url, `${APP_URL}/settings/notifications?category=${CATEGORY_OF[type]}`, type);
        assert.ok(parsed.text.includes(`${APP_URL}/settings/notifications`), `${type}: preferences link in the footer`);
      } else {
        assert.equal(unsubscribe, undefined, `${type}: no List-Unsubscribe for an email that cannot be switched off`);
      }
      assert.equal(/^List-Unsubscribe:/im.test(mail.raw.toString()), Boolean(CATEGORY_OF[type]), type);
      // No one-click endpoint exists, so no List-Unsubscribe-Post promising one.
      assert.ok(!/^List-Unsubscribe-Post:/im.test(mail.raw.toString()), type);
    }
    assert.equal(smtp.received.length, EVENT_TYPES.length);
  });

  it('says what each step is about: price on acceptance, feedback on rejection, carrier and tracking on shipping', async () => {
    await mailer.send(noticeFor('order.accepted', { total_price_cents: 4250, currency: 'USD' }), RECIPIENT, 'order_updates');
    let { parsed } = smtp.received.at(-1)!;
    assert.equal(parsed.subject, 'Order #3F9A12BC · Accepted · $42.50');
    assert.ok(parsed.text!.includes('Total: $42.50'));
    assert.ok((parsed.html as string).includes('$42.50'));

    // The currency's own minor unit: 4250 yen has no cents.
    await mailer.send(noticeFor('order.accepted', { total_price_cents: 4250, currency: 'JPY' }), RECIPIENT, 'order_updates');
    assert.ok(smtp.received.at(-1)!.parsed.subject!.endsWith('· ¥4,250'), smtp.received.at(-1)!.parsed.subject);

    await mailer.send(noticeFor('order.rejected', { feedback: 'Please use fewer colours.\nThe thumb is too busy.' }), RECIPIENT, 'order_updates');
    ({ parsed } = smtp.received.at(-1)!);
    assert.equal(parsed.subject, 'Order #3F9A12BC · Rejected · changes requested');
    assert.ok(parsed.text!.includes('> Please use fewer colours.\n> The thumb is too busy.'), parsed.text);
    assert.ok((parsed.html as string).includes('Please use fewer colours.<br>'));

    await mailer.send(noticeFor('order.shipped', { carrier: 'UPS', tracking_number: '1Z999AA10123456784' }), RECIPIENT, 'order_updates');
    ({ parsed } = smtp.received.at(-1)!);
    assert.equal(parsed.subject, 'Order #3F9A12BC · Shipped · UPS 1Z999AA10123456784');
    assert.ok(parsed.text!.includes('Carrier: UPS'));
    assert.ok(parsed.text!.includes('Tracking number: 1Z999AA10123456784'));
    assert.ok((parsed.html as string).includes('1Z999AA10123456784'));

    await mailer.send(noticeFor('order.in_production'), RECIPIENT, 'order_updates');
    assert.equal(smtp.received.at(-1)!.parsed.subject, 'Order #3F9A12BC · In production');
  });

  it('escapes what people wrote in the HTML part and keeps it verbatim in the text part', async () => {
    const hostile = '<script>alert("x")</script> & <img src=x onerror=alert(1)>';
    const notice = {
      ...noticeFor('order.rejected', { feedback: hostile, number: '<b>3F9A12BC</b>' }),
      title: 'Order <i>x</i> was rejected',
      body: `Your technician wrote: "${hostile}"`,
      link: `/orders/${ORDER_ID}?a=1&b="2"`,
    };
    await mailer.send(notice, { email: RECIPIENT.email, name: 'Dana <b>"the bold"</b>' }, 'order_updates');
    const { parsed } = smtp.received.at(-1)!;
    const html = parsed.html as string;
    assert.ok(!html.includes('<script>'), 'no live script tag');
    assert.ok(!html.includes('<img'), 'no live image tag');
    assert.ok(!html.includes('<b>'), 'no markup from the name or the number');
    assert.ok(!html.includes('<i>x</i>'), 'no markup from the title');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(html.includes('Hi Dana &lt;b&gt;&quot;the bold&quot;&lt;/b&gt;,'));
    assert.ok(html.includes(`href="${APP_URL}/orders/${ORDER_ID}?a=1&amp;b=&quot;2&quot;"`));
    assert.ok(parsed.text!.includes(`> ${hostile}`));
    // The name is user input in a header too: it stays a display name, the address stays the recipient's.
    assert.deepEqual(addresses(parsed.to), [RECIPIENT.email]);
  });

  it('keeps a link on the front end even when the notice carries a host-like link', async () => {
    await mailer.send({ ...noticeFor('order.delivered'), link: '//evil.example/phish' }, RECIPIENT, 'order_updates');
    const { parsed } = smtp.received.at(-1)!;
    assert.ok(parsed.text!.includes(`${APP_URL}/evil.example/phish`));
    assert.ok(!parsed.text!.includes('https://evil.example'));
  });

  it('a 550 for the recipient is permanent; a 451 is worth retrying', async () => {
    const permanent = await rejection(mailer.send(noticeFor('order.shipped'), { email: 'gone@example.com', name: 'Gone' }, 'order_updates'));
    assert.equal(permanent.retryable, false);
    assert.equal(permanent.responseCode, 550);
    assert.equal(permanent.code, 'EENVELOPE');

    const transient = await rejection(mailer.send(noticeFor('order.shipped'), { email: 'busy@example.com', name: 'Busy' }, 'order_updates'));
    assert.equal(transient.retryable, true);
    assert.equal(transient.responseCode, 451);

    // An address no server could take is refused before sending, for good.
    const malformed = await rejection(mailer.send(noticeFor('order.shipped'), { email: 'not an address', name: 'X' }, 'order_updates'));
    assert.equal(malformed.retryable, false);
    assert.equal(malformed.code, 'EENVELOPE');

    // The pool carries on after refusals.
    const before = smtp.received.length;
    await mailer.send(noticeFor('order.delivered'), RECIPIENT, 'order_updates');
    assert.equal(smtp.received.length, before + 1);
  });

  it('sends through a small pool of reused connections', async () => {
    const pooled = await TestSmtp.start();
    const m = createMailer(configFor({ SMTP_URL: pooled.url() }), recordingLog().log, { maxConnections: 3 });
    try {
      await Promise.all(Array.from({ length: 30 }, () => m.send(noticeFor('message.created'), RECIPIENT, 'messages')));
      assert.equal(pooled.received.length, 30);
      assert.ok(pooled.connections <= 3, `${pooled.connections} connections for 30 messages`);
      assert.equal(new Set(pooled.received.map((r) => r.parsed.messageId)).size, 30);
    } finally {
      await m.close();
      await pooled.stop();
    }
  });
});

describe('SMTP failures are classified for the worker', () => {
  it('a server that is down: retryable, at once', async () => {
    const port = await freePort();
    const m = createMailer(configFor({ SMTP_URL: `smtp://127.0.0.1:${port}` }), recordingLog().log, { connectionTimeoutMs: 1000 });
    const started = Date.now();
    const err = await rejection(m.send(noticeFor('order.shipped'), RECIPIENT, 'order_updates'));
    assert.equal(err.retryable, true);
    assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
    assert.equal(err.responseCode, undefined);
    await m.close();
  });

  it('a server that went away and came back: retryable while down, delivered after, by the same mailer', async () => {
    let server = await TestSmtp.start();
    const port = server.port;
    const m = createMailer(configFor({ SMTP_URL: server.url() }), recordingLog().log, { connectionTimeoutMs: 1000 });
    try {
      await m.send(noticeFor('order.paid'), RECIPIENT, 'order_updates');
      assert.equal(server.received.length, 1);
      await server.stop();
      const down = await rejection(m.send(noticeFor('order.shipped'), RECIPIENT, 'order_updates'));
      assert.equal(down.retryable, true);
      server = await TestSmtp.start({ port });
      const notice = noticeFor('order.shipped');
      await m.send(notice, RECIPIENT, 'order_updates');
      assert.equal(server.received[0]?.parsed.messageId, `<${notice.id}@localhost>`);
    } finally {
      await m.close();
      await server.stop();
    }
  });

  it('a server that accepts the connection and never greets: retryable within the greeting timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const m = createMailer(configFor({ SMTP_URL: `smtp://127.0.0.1:${port}` }), recordingLog().log, { greetingTimeoutMs: 400, connectionTimeoutMs: 400 });
    try {
      const started = Date.now();
      const err = await rejection(m.send(noticeFor('order.shipped'), RECIPIENT, 'order_updates'));
      const took = Date.now() - started;
      assert.equal(err.retryable, true);
      assert.equal(err.code, 'ETIMEDOUT');
      assert.ok(took >= 300 && took < 5000, `${took} ms`);
    } finally {
      await m.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('SMTP AUTH from the URL', () => {
  let smtp: TestSmtp;
  before(async () => {
    // Mailgun's login is an address: its @ arrives percent-encoded in the URL.
    smtp = await TestSmtp.start({ auth: { user: 'postmaster@mg.kendallsnails.example', pass: 'p@ss:w/rd' } });
  });
  after(() => smtp.stop());

  it('logs in with the percent-decoded credentials', async () => {
    const m = createMailer(configFor({ SMTP_URL: smtp.url('postmaster%40mg.kendallsnails.example:p%40ss%3Aw%2Frd') }), recordingLog().log);
    try {
      await m.send(noticeFor('order.paid', { total_price_cents: 9900 }), RECIPIENT, 'order_updates');
      assert.equal(smtp.received.length, 1);
      assert.equal(smtp.received[0]!.user, 'postmaster@mg.kendallsnails.example');
    } finally {
      await m.close();
    }
  });

  it('wrong credentials: an operator fixes them, so the message is kept for a retry', async () => {
    const m = createMailer(configFor({ SMTP_URL: smtp.url('postmaster%40mg.kendallsnails.example:wrong') }), recordingLog().log);
    try {
      const err = await rejection(m.send(noticeFor('order.paid'), RECIPIENT, 'order_updates'));
      assert.equal(err.code, 'EAUTH');
      assert.equal(err.responseCode, 535);
      assert.equal(err.retryable, true);
      assert.ok(!err.message.includes('wrong'));
    } finally {
      await m.close();
    }
  });

  it('the Mailgun add-on variables become the SMTP URL when SMTP_URL is unset', async () => {
    const config = loadConfig({
      MAILGUN_SMTP_SERVER: '127.0.0.1',
      MAILGUN_SMTP_PORT: String(smtp.port),
      MAILGUN_SMTP_LOGIN: 'postmaster@mg.kendallsnails.example',
      MAILGUN_SMTP_PASSWORD: 'p@ss:w/rd',
      APP_URL,
    });
    assert.deepEqual(config.mail.smtp, { host: '127.0.0.1', port: smtp.port, secure: false, user: 'postmaster@mg.kendallsnails.example', pass: 'p@ss:w/rd' });
    const m = createMailer(config, recordingLog().log);
    try {
      await m.send(noticeFor('order.delivered'), RECIPIENT, 'order_updates');
      assert.equal(smtp.received.at(-1)!.user, 'postmaster@mg.kendallsnails.example');
    } finally {
      await m.close();
    }
  });
});

describe('without SMTP_URL', () => {
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-mail-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('development writes each message as an .eml file under DATA_DIR/mail and logs one line naming it', async () => {
    const { log, lines } = recordingLog();
    const m = createMailer(configFor({ DATA_DIR: dataDir }), log);
    assert.equal(m.mode, 'file');
    const notice = noticeFor('order.rejected', { feedback: 'Fewer <b>colours</b>' });
    await m.send(notice, RECIPIENT, 'order_updates');

    const files = readdirSync(path.join(dataDir, 'mail'));
    assert.equal(files.length, 1);
    assert.ok(files[0]!.endsWith(`-${notice.id}.eml`), files[0]);
    const file = path.join(dataDir, 'mail', files[0]!);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 'info');
    assert.equal(lines[0]!.obj.file, file);
    assert.ok(lines[0]!.msg.includes(file));

    const parsed = await simpleParser(readFileSync(file));
    assert.equal(parsed.subject, 'Order #3F9A12BC · Rejected · changes requested');
    assert.deepEqual(addresses(parsed.to), [RECIPIENT.email]);
    assert.equal(parsed.from?.value[0]?.address, 'notifications@localhost');
    assert.equal(parsed.messageId, `<${notice.id}@localhost>`);
    assert.ok(parsed.text!.includes('> Fewer <b>colours</b>'));
    assert.ok((parsed.html as string).includes('Fewer &lt;b&gt;colours&lt;/b&gt;'));
    await m.close();
  });

  it('staging and production send nothing and say so once, at start', async () => {
    const { log, lines } = recordingLog();
    const config = { ...configFor({ DATA_DIR: dataDir }), environment: 'production' as const };
    const m = createMailer(config, log);
    assert.equal(m.mode, 'off');
    await m.send(noticeFor('order.shipped'), RECIPIENT, 'order_updates');
    await m.send(noticeFor('order.delivered'), RECIPIENT, 'order_updates');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 'warn');
    assert.match(lines[0]!.msg, /SMTP_URL is not set/);
    assert.equal(readdirSync(path.join(dataDir, 'mail')).length, 1, 'no file written when deployed');
  });
});

describe('mail configuration', () => {
  const problemsOf = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.join('; ');
      throw err;
    }
    return '';
  };

  it('parses smtp:// and smtps:// with default ports', () => {
    assert.deepEqual(loadConfig({ SMTP_URL: 'smtps://u:p@smtp.example.com' }).mail.smtp, { host: 'smtp.example.com', port: 465, secure: true, user: 'u', pass: 'p' });
    assert.deepEqual(loadConfig({ SMTP_URL: 'smtp://smtp.example.com' }).mail.smtp, { host: 'smtp.example.com', port: 587, secure: false, user: undefined, pass: undefined });
    assert.equal(loadConfig({}).mail.smtp, undefined);
    assert.equal(loadConfig({}).mail.from, '"Kendall\'s Nails" <notifications@localhost>');
  });

  it('refuses a malformed SMTP_URL without repeating its password', () => {
    for (const bad of ['http://u:s3cret-pw@smtp.example.com', 'smtp://', 'not a url s3cret-pw', 'smtp://u:s3cret-pw@host/path']) {
      const problems = problemsOf({ SMTP_URL: bad });
      assert.match(problems, /SMTP_URL must be smtp:\/\//, bad);
      assert.ok(!problems.includes('s3cret-pw'), problems);
    }
  });

  it('requires MAIL_FROM with SMTP_URL in staging and production, and checks its shape', () => {
    const deployed = {
      ENVIRONMENT: 'production',
      PORT: '8080',
      DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
      AUTH0_DOMAIN: 'x.auth0.com',
      AUTH0_AUDIENCE: 'https://api',
      AUTH0_CLIENT_ID: 'id',
      AUTH0_CLIENT_SECRET: 'secret',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'example',
      AWS_REGION: 'us-east-1',
      S3_BUCKET_NAME: 'kendalls-test',
      CORS_ALLOWED_ORIGINS: 'https://kendallsnails.example',
      TRUST_PROXY: '1',
      PUBLIC_URL: 'https://api.kendallsnails.example',
    };
    assert.equal(problemsOf(deployed), '', 'no SMTP_URL: starts, email off');
    assert.match(problemsOf({ ...deployed, SMTP_URL: 'smtp://u:p@smtp.mailgun.org:587' }), /MAIL_FROM is required with SMTP_URL/);
    assert.equal(problemsOf({ ...deployed, SMTP_URL: 'smtp://u:p@smtp.mailgun.org:587', MAIL_FROM: "Kendall's Nails <notifications@mg.kendallsnails.com>" }), '');
    for (const bad of ['not-an-address', 'a@b.com, c@d.com', 'Name <a@b.com>\r\nBcc: x@y.com', '<>']) {
      assert.match(problemsOf({ MAIL_FROM: bad }), /MAIL_FROM must be one address/, bad);
    }
  });
});
