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

export const FAKE_CLIENT_ID = 'test-client-id';
export const FAKE_CLIENT_SECRET = 'test-client-secret-do-not-log';
export const FAKE_CONNECTION = 'Username-Password-Authentication';

interface Failure {
  status: number;
  remaining: number;
  headers: Record<string, string>;
}

/**
 * A local stand-in for the parts of Auth0 the service talks to, speaking Auth0's formats over real HTTP:
 * JWKS, /userinfo, /oauth/token (client credentials) and the Management API endpoints used for invitations
 * (create and delete a user, password-change tickets), with Auth0's validation, conflicts and rate-limit headers.
 */
export class FakeAuth0 {
  server!: Server;
  url!: string;
  keys: SigningKey[] = [];
  /** Profiles /userinfo answers with, by subject. */
  profiles = new Map<string, { email?: string; name?: string }>();
  /** Users in the tenant (created through the Management API or seeded with addUser). */
  createdUsers: Array<Record<string, unknown>> = [];
  deletedUsers: string[] = [];
  tickets: Array<Record<string, unknown>> = [];
  calls: Array<{ method: string; path: string }> = [];
  /** Management API tokens handed out by /oauth/token; anything else is refused with 401. */
  issuedTokens = new Set<string>();
  /** jwks: 'ok' | 'down' (503) | 'garbage' | 'slow'; management: status code every management call fails with. */
  jwksMode: 'ok' | 'down' | 'garbage' | 'slow' = 'ok';
  managementFailure: number | undefined;
  userinfoFailure: number | undefined;
  private failures = new Map<string, Failure>();

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
      AUTH0_CLIENT_ID: FAKE_CLIENT_ID,
      AUTH0_CLIENT_SECRET: FAKE_CLIENT_SECRET,
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
    if (path === '/oauth/token' && req.method === 'POST') return this.oauthToken(req, res);
    if (path.startsWith('/api/v2/')) return this.management(req, res, path);
    return this.send(res, 404, { error: 'not_found' });
  }

  /**
   * Makes `METHOD /path` (a prefix: 'DELETE /api/v2/users/' matches every user) answer `status`, `times` times
   * (default: until cleared with `times: 0`). A 429 carries Auth0's rate-limit headers unless `headers` says otherwise.
   */
  fail(route: string, status: number, opts: { times?: number; headers?: Record<string, string> } = {}) {
    if (opts.times === 0) {
      this.failures.delete(route);
      return;
    }
    const headers =
      opts.headers ??
      (status === 429
        ? { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 60), 'retry-after': '60' }
        : {});
    this.failures.set(route, { status, remaining: opts.times ?? Infinity, headers });
  }

  /** A user who already exists in the tenant (e.g. signed up as a customer). */
  addUser(email: string): Record<string, unknown> {
    const user = { email: email.toLowerCase(), user_id: `auth0|${randomUUID().replace(/-/g, '')}`, connection: FAKE_CONNECTION };
    this.createdUsers.push(user);
    return user;
  }

  countCalls(method: string, pathPrefix: string): number {
    return this.calls.filter((c) => c.method === method && c.path.startsWith(pathPrefix)).length;
  }

  private injectedFailure(method: string, path: string): Failure | undefined {
    for (const [route, failure] of this.failures) {
      if (`${method} ${path}`.startsWith(route) && failure.remaining > 0) {
        failure.remaining -= 1;
        return failure;
      }
    }
    return undefined;
  }

  private sendFailure(res: ServerResponse, failure: Failure) {
    const error = failure.status === 429 ? 'Too Many Requests' : failure.status >= 500 ? 'Internal Server Error' : 'Failure';
    res.writeHead(failure.status, { 'content-type': 'application/json', ...failure.headers });
    res.end(JSON.stringify({ statusCode: failure.status, error, message: 'fake failure' }));
  }

  private async oauthToken(req: IncomingMessage, res: ServerResponse) {
    const body = await this.body(req);
    const failure = this.injectedFailure('POST', '/oauth/token');
    if (failure) return this.sendFailure(res, failure);
    if (body.grant_type !== 'client_credentials') return this.send(res, 400, { error: 'unsupported_grant_type' });
    if (body.client_id !== FAKE_CLIENT_ID || body.client_secret !== FAKE_CLIENT_SECRET) {
      return this.send(res, 401, { error: 'access_denied', error_description: 'Unauthorized' });
    }
    if (body.audience !== `https://${FAKE_AUTH0_DOMAIN}/api/v2/`) {
      return this.send(res, 403, { error: 'access_denied', error_description: `Service not enabled within domain: ${String(body.audience)}` });
    }
    if (this.managementFailure) return this.send(res, this.managementFailure, { error: 'failure' });
    const token = `mgmt-${randomUUID()}`;
    this.issuedTokens.add(token);
    return this.send(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 86400, scope: 'create:users delete:users create:user_tickets' });
  }

  private async management(req: IncomingMessage, res: ServerResponse, path: string) {
    const method = req.method ?? 'GET';
    const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!this.issuedTokens.has(bearer)) return this.send(res, 401, { statusCode: 401, error: 'Unauthorized', message: 'Invalid token' });
    if (this.managementFailure) {
      return this.send(res, this.managementFailure, { statusCode: this.managementFailure, error: 'Failure', message: 'fake failure' });
    }
    const failure = this.injectedFailure(method, path);
    if (failure) return this.sendFailure(res, failure);
    const body = await this.body(req);
    const badRequest = (message: string, errorCode: string) => this.send(res, 400, { statusCode: 400, error: 'Bad Request', message, errorCode });

    if (path === '/api/v2/users' && method === 'POST') {
      if (body.connection !== FAKE_CONNECTION) return badRequest('The connection does not exist.', 'inexistent_connection');
      if (typeof body.email !== 'string' || !body.email.includes('@')) return badRequest('Payload validation error: email', 'invalid_body');
      if (typeof body.password !== 'string' || body.password.length < 8) return badRequest('PasswordStrengthError: Password is too weak', 'invalid_password');
      const email = body.email.toLowerCase();
      if (this.createdUsers.some((u) => u.email === email)) {
        return this.send(res, 409, { statusCode: 409, error: 'Conflict', message: 'The user already exists.', errorCode: 'auth0_idp_error' });
      }
      const user: Record<string, unknown> = { ...body, email, user_id: `auth0|${randomUUID().replace(/-/g, '')}`, created_at: new Date().toISOString() };
      this.createdUsers.push(user);
      const { password: _password, ...visible } = user;
      return this.send(res, 201, visible);
    }
    if (path.startsWith('/api/v2/users/') && method === 'DELETE') {
      const id = decodeURIComponent(path.slice('/api/v2/users/'.length));
      this.createdUsers = this.createdUsers.filter((u) => u.user_id !== id);
      this.deletedUsers.push(id);
      res.writeHead(204).end();
      return;
    }
    if (path === '/api/v2/tickets/password-change' && method === 'POST') {
      if (!this.createdUsers.some((u) => u.user_id === body.user_id)) {
        return this.send(res, 404, { statusCode: 404, error: 'Not Found', message: 'User not found', errorCode: 'inexistent_user' });
      }
      this.tickets.push(body);
      return this.send(res, 201, { ticket: `https://${FAKE_AUTH0_DOMAIN}/lo/reset?ticket=${randomUUID()}#` });
    }
    return this.send(res, 404, { statusCode: 404, error: 'Not Found', message: 'Not Found' });
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
