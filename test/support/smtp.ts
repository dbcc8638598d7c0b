import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A message the test SMTP server accepted: the SMTP envelope as sent, the raw bytes, and the parsed message. */
export interface ReceivedMail {
  envelope: { from: string; to: string[] };
  raw: Buffer;
  parsed: ParsedMail;
  user?: string;
}

export interface TestSmtpOptions {
  /** Require AUTH with exactly these credentials (PLAIN or LOGIN over the plain connection). */
  auth?: { user: string; pass: string };
  /** Refuse RCPT TO for an address: return the reply code (e.g. 550, 451), or undefined to accept. */
  refuseRecipient?: (address: string) => number | undefined;
  /** Listen on this port (a server restarted where the previous one was); default: any free port. */
  port?: number;
}

/**
 * A real SMTP server (the `smtp-server` package) on 127.0.0.1, without TLS, that keeps every accepted message
 * parsed with `mailparser`; what tests of the email channel (and the worker's) read back.
 */
export class TestSmtp {
  readonly received: ReceivedMail[] = [];
  readonly logins: Array<{ method: string; username?: string; password?: string }> = [];
  /** Connections opened to it so far (the pool should reuse a few). */
  connections = 0;
  private waiters: Array<() => void> = [];

  private server!: SMTPServer;
  port = 0;

  private constructor() {}

  static async start(opts: TestSmtpOptions = {}): Promise<TestSmtp> {
    const self = new TestSmtp();
    const server = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      authOptional: !opts.auth,
      allowInsecureAuth: true,
      authMethods: ['PLAIN', 'LOGIN'],
      logger: false,
      onConnect(_session, cb) {
        self.connections++;
        cb();
      },
      onAuth(auth, _session, cb) {
        self.logins.push({ method: auth.method, username: auth.username, password: auth.password ?? undefined });
        if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
        return cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
      onRcptTo(address, _session, cb) {
        const code = opts.refuseRecipient?.(address.address);
        if (code) return cb(Object.assign(new Error(`<${address.address}>: recipient refused`), { responseCode: code }));
        cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          simpleParser(raw)
            .then((parsed) => {
              self.received.push({
                envelope: {
                  from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                  to: session.envelope.rcptTo.map((r) => r.address),
                },
                raw,
                parsed,
                user: typeof session.user === 'string' ? session.user : undefined,
              });
              for (const wake of self.waiters.splice(0)) wake();
              cb();
            })
            .catch((err: Error) => cb(err));
        });
      },
    });
    server.on('error', () => {});
    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
    self.server = server;
    self.port = (server.server.address() as AddressInfo).port;
    return self;
  }

  url(credentials?: string): string {
    return `smtp://${credentials ? `${credentials}@` : ''}127.0.0.1:${this.port}`;
  }

  /** Resolves once `count` messages in all have arrived (or rejects after timeoutMs). */
  async waitFor(count: number, timeoutMs = 5000): Promise<ReceivedMail[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} messages, got ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
