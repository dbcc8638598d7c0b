import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type JWK, type JWTPayload, SignJWT, exportJWK, generateKeyPair } from 'jose';

export const FAKE_AUTH0_DOMAIN = 'kendalls-test.auth0.local';
export const TEST_AUDIENCE = 'https://api.kendallsnails.test';
export const ROLE_CLAIM = 'https://kendallsnails.com/role';

interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  publicJwk: JWK;
}

export interface TokenOptions {
  sub?: string;
  role?: 'customer' | 'nail_technician' | string;
  email?: string | null;
  name?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  notBefore?: number;
  audience?: string;
  issuer?: string;
  claims?: JWTPayload;
  key?: SigningKey;
  header?: Record<string, unknown>;
}

/**
 * A local stand-in for the parts of Auth0 the service talks to, speaking Auth0's formats over real HTTP:
 * JWKS, /userinfo, /oauth/token (client credentials) and the Management API endpoints used for invitations.
 */
export class FakeAuth0 {
  server!: Server;
  url!: string;
  keys: SigningKey[] = [];
  /** Profiles /userinfo answers with, by subject. */
  profiles = new Map<string, { email?: string; name?: string }>();
  createdUsers: Array<Record<string, unknown>> = [];
  tickets: Array<Record<string, unknown>> = [];
  calls: Array<{ method: string; path: string }> = [];
  /** jwks: 'ok' | 'down' (503) | 'garbage' | 'slow'; management: status code to fail with. */
  jwksMode: 'ok' | 'down' | 'garbage' | 'slow' = 'ok';
  managementFailure: number | undefined;
  userinfoFailure: number | undefined;

  static async start(): Promise<FakeAuth0> {
    const fake = new FakeAuth0();
    await fake.rotate();
    fake.server = createServer((req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}/`;
    return fake;
  }

  get issuer() {
    return this.url;
  }

  /** Env for an app that trusts this issuer and uses it as its Auth0 tenant. */
  env(): Record<string, string> {
    return {
      AUTH0_DOMAIN: FAKE_AUTH0_DOMAIN,
      AUTH0_ISSUER_BASE_URL: this.url,
      AUTH0_AUDIENCE: TEST_AUDIENCE,
      AUTH0_CLIENT_ID: 'test-client-id',
      AUTH0_CLIENT_SECRET: 'test-client-secret-do-not-log',
    };
  }

  /** fetch that sends https://<tenant>/… to this server, as a real tenant would be reached. */
  fetch: typeof fetch = (input, init) => {
    const raw = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url;
    const rewritten = raw.replace(`https://${FAKE_AUTH0_DOMAIN}/`, this.url);
    if (typeof input === 'object' && !(input instanceof URL)) return fetch(new Request(rewritten, input), init);
    return fetch(rewritten, init);
  };

  async newKey(): Promise<SigningKey> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = randomUUID();
    return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
  }

  /** Adds a key to the JWKS and signs new tokens with it. */
  async rotate(): Promise<SigningKey> {
    const key = await this.newKey();
    this.keys.push(key);
    return key;
  }

  async token(opts: TokenOptions = {}): Promise<string> {
    const key = opts.key ?? this.keys[this.keys.length - 1]!;
    const sub = opts.sub ?? `auth0|${randomUUID()}`;
    const email = opts.email === null ? undefined : (opts.email ?? `${sub.replace(/\W/g, '')}@example.com`);
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = { ...(opts.claims ?? {}) };
    if (opts.role !== undefined) payload[ROLE_CLAIM] = opts.role;
    if (email) payload.email = email;
    if (opts.name) payload.name = opts.name;
    this.profiles.set(sub, { email: email ?? `${sub.replace(/\W/g, '')}@userinfo.example.com`, name: opts.name });
    const jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT', ...(opts.header ?? {}) })
      .setIssuer(opts.issuer ?? this.url)
      .setAudience(opts.audience ?? TEST_AUDIENCE)
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + (opts.expiresIn ?? 3600));
    if (opts.notBefore !== undefined) jwt.setNotBefore(now + opts.notBefore);
    return jwt.sign(key.privateKey);
  }

  private async body(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text) return {};
    if ((req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
      return Object.fromEntries(new URLSearchParams(text));
    }
    return JSON.parse(text) as Record<string, unknown>;
  }

  private send(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]!;
    this.calls.push({ method: req.method ?? 'GET', path });
    if (path === '/.well-known/jwks.json') {
      if (this.jwksMode === 'down') return this.send(res, 503, { error: 'unavailable' });
      if (this.jwksMode === 'garbage') return this.send(res, 200, '<html>not json</html>');
      if (this.jwksMode === 'slow') await new Promise((r) => setTimeout(r, 5000));
      return this.send(res, 200, { keys: this.keys.map((k) => k.publicJwk) });
    }
    if (path === '/userinfo') {
      if (this.userinfoFailure) return this.send(res, this.userinfoFailure, { error: 'failure' });
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const sub = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString() || '{}').sub as string;
      const profile = this.profiles.get(sub);
      if (!profile) return this.send(res, 401, { error: 'invalid_token' });
      return this.send(res, 200, { sub, ...profile });
    }
    if (path === '/oauth/token' && req.method === 'POST') {
      const body = await this.body(req);
      if (body.client_secret !== 'test-client-secret-do-not-log') return this.send(res, 401, { error: 'access_denied' });
      if (this.managementFailure) return this.send(res, this.managementFailure, { error: 'failure' });
      return this.send(res, 200, { access_token: `mgmt-${randomUUID()}`, token_type: 'Bearer', expires_in: 86400 });
    }
    if (path.startsWith('/api/v2/')) {
      if (!(req.headers.authorization ?? '').startsWith('Bearer mgmt-')) return this.send(res, 401, { statusCode: 401, error: 'Unauthorized' });
      if (this.managementFailure) {
        return this.send(res, this.managementFailure, { statusCode: this.managementFailure, error: 'Failure', message: 'fake failure' });
      }
      const body = await this.body(req);
      if (path === '/api/v2/users' && req.method === 'POST') {
        if (this.createdUsers.some((u) => u.email === body.email)) {
          return this.send(res, 409, { statusCode: 409, error: 'Conflict', message: 'The user already exists.', errorCode: 'auth0_idp_error' });
        }
        const user: Record<string, unknown> = { ...body, user_id: `auth0|${randomUUID().replace(/-/g, '')}`, created_at: new Date().toISOString() };
        this.createdUsers.push(user);
        const { password: _password, ...visible } = user;
        return this.send(res, 201, visible);
      }
      if (path === '/api/v2/tickets/password-change' && req.method === 'POST') {
        this.tickets.push(body);
        return this.send(res, 201, { ticket: `https://${FAKE_AUTH0_DOMAIN}/lo/reset?ticket=${randomUUID()}#` });
      }
    }
    return this.send(res, 404, { error: 'not_found' });
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
