import { isIP } from 'node:net';
import path from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { DEFAULT_TURNAROUND_BUSINESS_DAYS } from './modules/orders/orders.domain.js';

export type Environment = 'development' | 'staging' | 'production';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Config {
  environment: Environment;
  port: number;
  host: string;
  /** Absolute base URL the API is reached at; used for locally signed image links and the dev issuer. */
  publicUrl: string;
  logLevel: LogLevel;
  dataDir: string;
  database: {
    /** DATABASE_URL: the primary, always direct (migrations take a session advisory lock there). */
    url?: string;
    /** DATABASE_CONNECTION_POOL_URL: Heroku's PgBouncer (transaction mode) in front of the primary; queries use it when set. */
    poolUrl?: string;
    /** DATABASE_READ_URL: a follower; anonymous gallery and comment reads go to it while it is fresh. */
    readUrl?: string;
    /** DATABASE_READ_MAX_LAG_S: past this replay lag the follower is skipped and the primary answers. */
    readMaxLagS: number;
    /** DATABASE_SSL; undefined lets sslmode in the URL and the environment decide (see db/client.ts). */
    ssl?: 'off' | 'no-verify' | 'verify';
    poolMax: number;
    connectionTimeoutMs: number;
    idleTimeoutMs: number;
    statementTimeoutMs: number;
  };
  auth0: {
    domain?: string;
    audience: string;
    clientId?: string;
    clientSecret?: string;
    issuerBaseUrl?: string;
    roleClaim: string;
    connection: string;
  };
  /** True when tokens come from the built-in development issuer instead of Auth0. */
  devIssuer: boolean;
  s3?: {
    bucket: string;
    region: string;
    accessKeyId?: string;
    secretAccessKey?: string;
    endpoint?: string;
    forcePathStyle: boolean;
  };
  corsAllowedOrigins: string[];
  /**
   * TRUST_PROXY: which peers' X-Forwarded-For / -Proto / -Host are believed. `false` (unset): none, request.ip is
   * the socket address; a number: that many proxy hops in front of the app (Heroku's router: 1); a list: the
   * addresses or CIDR ranges of the proxies (proxy-addr's names loopback, linklocal, uniquelocal allowed).
   */
  trustProxy: false | number | string[];
  rateLimit: {
    enabled: boolean;
    redisUrl?: string;
    /** Bounds connecting to Redis and every counter update; past it the request is served unlimited. */
    redisTimeoutMs: number;
    /** Prefix of every counter key, so several apps (or test runs) can share one Redis. */
    keyPrefix: string;
  };
  /** Load shedding (503 before work starts); 0 turns a check off. */
  loadShedding: {
    maxEventLoopDelayMs: number;
    maxHeapUsedMb: number;
    maxRssMb: number;
    /** Requests queued for a database connection (PostgreSQL pool). */
    maxDbWaiting: number;
    sampleIntervalMs: number;
  };
  maxUploadSizeMb: number;
  /**
   * Stripe Checkout (issue 17): both keys, or neither (then checkout answers 503 PAYMENTS_NOT_CONFIGURED and
   * payments are recorded by hand). A secret key without the webhook secret would take money it never records.
   */
  stripe?: { secretKey: string; webhookSecret: string };
  /** The web front end's base URL: Checkout's success and cancel pages, and every link in an email, are under it. */
  appUrl: string;
  mail: {
    /**
     * SMTP_URL (or the Mailgun add-on's MAILGUN_SMTP_* variables), parsed. Absent: development writes each message
     * as an .eml file under DATA_DIR/mail; staging and production send no email (logged once at start).
     */
    smtp?: SmtpServer;
    /** MAIL_FROM: the From of every notification, `Name <address>` or a bare address. */
    from: string;
  };
  basePriceCents: number;
  /** Business days from acceptance to an order's ship_by date. */
  turnaroundBusinessDays: number;
  currency: string;
  shutdownTimeoutMs: number;
  requestTimeoutMs: number;
  /** How often objects left by orders that were never created are swept from the store. */
  storageCleanupIntervalMs: number;
  /** The notification worker (pg-boss, modules/notifications). */
  worker: {
    /** WORKER_IN_PROCESS: the web process runs the worker too (development); else the Procfile's `worker` dyno does. */
    inProcess: boolean;
    pollIntervalS: number;
    batchSize: number;
    /** Retries after the first attempt, before the dead-letter queue. */
    retryLimit: number;
    retryDelayS: number;
    retryDelayMaxS: number;
    /** A job active longer than this (its worker was killed) is retried. */
    jobTimeoutS: number;
  };
  webhooks: {
    /**
     * WEBHOOK_ENCRYPTION_KEYS: 32-byte keys (base64 or hex, comma-separated) sealing webhook signing secrets at
     * rest; the first seals, any opens. Undefined in staging/production when unset (webhooks then answer 503);
     * development falls back to a public built-in key.
     */
    encryptionKeys?: Buffer[];
  };
  /** The live stream (GET /api/v1/stream, modules/live). */
  stream: {
    /** REDIS_URL: the bus between web processes is Redis pub/sub when set, PostgreSQL LISTEN/NOTIFY otherwise. */
    redisUrl?: string;
    /** LIVE_CHANNEL: the Redis channel or PostgreSQL NOTIFY channel, so several apps (or test runs) can share one broker. */
    channel: string;
    /** A comment line this often keeps Heroku's router (55 s idle) and other proxies from closing an idle stream. */
    heartbeatMs: number;
    /** The `retry:` hint: how long a browser waits before reconnecting a dropped stream. */
    retryMs: number;
    maxPerUser: number;
    maxPerProcess: number;
    /** How long a ticket from POST /api/v1/stream/tickets can be redeemed (once). */
    ticketTtlS: number;
  };
}

export interface SmtpServer {
  host: string;
  port: number;
  /** smtps:// (implicit TLS, port 465 by default); smtp:// upgrades with STARTTLS when the server offers it. */
  secure: boolean;
  /** Percent-decoded from the URL. Secret: never logged. */
  user?: string;
  pass?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Which process is starting: `web` (the API, Procfile `web`), `release` (`cli.js migrate`, Heroku's release
 * phase) or `cli` (`cli.js invite-technician`). Each needs only what it uses, so a release dyno never needs
 * PORT, and a migration never needs S3 or Auth0.
 */
export type ProcessKind = 'web' | 'release' | 'cli' | 'worker';

/** Variables each process refuses to run without in staging and production. */
export const REQUIRED_BY_PROCESS = {
  web: [
    'PORT',
    'PUBLIC_URL',
    'DATABASE_URL',
    'AUTH0_DOMAIN',
    'AUTH0_AUDIENCE',
    'AUTH0_CLIENT_ID',
    'AUTH0_CLIENT_SECRET',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_REGION',
    'S3_BUCKET_NAME',
    'CORS_ALLOWED_ORIGINS',
    'TRUST_PROXY',
    'ENVIRONMENT',
  ],
  release: ['DATABASE_URL', 'ENVIRONMENT'],
  worker: ['DATABASE_URL', 'ENVIRONMENT'],
  cli: ['DATABASE_URL', 'AUTH0_DOMAIN', 'AUTH0_CLIENT_ID', 'AUTH0_CLIENT_SECRET', 'ENVIRONMENT'],
} as const satisfies Record<ProcessKind, readonly string[]>;

/** What the web process requires (the longest list). */
export const REQUIRED_IN_PRODUCTION = REQUIRED_BY_PROCESS.web;

/**
 * PUBLIC_URL, or where it is unset the app's Heroku address: HEROKU_APP_DEFAULT_DOMAIN_NAME (dyno metadata,
 * `heroku labs:enable runtime-dyno-metadata`; exact, including the random suffix Heroku now appends to new
 * apps' herokuapp.com names), then HEROKU_APP_NAME (set in review apps: https://<name>.herokuapp.com, right
 * for apps named before the suffix existed).
 */
export function derivePublicUrl(get: (name: string) => string | undefined): string | undefined {
  const explicit = get('PUBLIC_URL');
  if (explicit) return explicit.replace(/\/+$/, '');
  const domain = get('HEROKU_APP_DEFAULT_DOMAIN_NAME')?.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (domain) return `https://${domain}`;
  const app = get('HEROKU_APP_NAME');
  if (app) return `https://${app}.herokuapp.com`;
  return undefined;
}

/**
 * SMTP_URL, or where it is unset the one Heroku's Mailgun add-on implies: it sets MAILGUN_SMTP_SERVER, _PORT, _LOGIN
 * and _PASSWORD (no URL), so they are combined here and a credential the add-on rotates is picked up on restart.
 */
export function deriveSmtpUrl(get: (name: string) => string | undefined): string | undefined {
  const explicit = get('SMTP_URL');
  if (explicit) return explicit;
  const server = get('MAILGUN_SMTP_SERVER');
  const login = get('MAILGUN_SMTP_LOGIN');
  const password = get('MAILGUN_SMTP_PASSWORD');
  if (!server || !login || !password) return undefined;
  return `smtp://${encodeURIComponent(login)}:${encodeURIComponent(password)}@${server}:${get('MAILGUN_SMTP_PORT') ?? '587'}`;
}

/** SMTP_URL's parts, or a problem to report (which never repeats the URL: it may hold a password). */
export function parseSmtpUrl(raw: string): { value: SmtpServer } | { problem: string } {
  const problem = 'SMTP_URL must be smtp://user:password@host:port or smtps://… (user and password percent-encoded, e.g. @ as %40)';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem };
  }
  if ((url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || !url.hostname || (url.pathname !== '' && url.pathname !== '/')) {
    return { problem };
  }
  const secure = url.protocol === 'smtps:';
  try {
    return {
      value: {
        host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port ? Number(url.port) : secure ? 465 : 587,
        secure,
        user: url.username ? decodeURIComponent(url.username) : undefined,
        pass: url.password ? decodeURIComponent(url.password) : undefined,
      },
    };
  } catch {
    return { problem };
  }
}

/** `Name <local@domain>` or `local@domain`, one address, no line breaks (it becomes a header). */
const MAIL_FROM_PATTERN = /^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/;

const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/** TRUST_PROXY's value (see Config.trustProxy), or a problem to report. */
export function parseTrustProxy(raw: string | undefined): { value: Config['trustProxy'] } | { problem: string } {
  if (raw === undefined) return { value: false };
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops >= 1 && hops <= 10) return { value: hops };
    return { problem: `TRUST_PROXY as a hop count must be from 1 to 10 (got "${raw}"); leave it unset to trust no proxy` };
  }
  const entries = raw.split(',').map((e) => e.trim()).filter(Boolean);
  const invalid = entries.filter((entry) => {
    if (PROXY_NAMES.includes(entry)) return false;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || extra !== undefined) return true;
    if (prefix === undefined) return false;
    return !/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128);
  });
  if (entries.length === 0 || invalid.length > 0) {
    return {
      problem: `TRUST_PROXY must be a hop count (1 behind Heroku's router) or a comma-separated list of proxy addresses or CIDR ranges (got "${invalid.join(', ') || raw}")`,
    };
  }
  return { value: entries };
}

/** WEBHOOK_ENCRYPTION_KEYS: each a 32-byte key as 64 hex digits or base64 (`openssl rand -base64 32`). */
export function parseKeys(raw: string | undefined): { keys?: Buffer[] } | { problem: string } {
  if (raw === undefined) return {};
  const keys = raw.split(',').map((k) => k.trim()).filter(Boolean).map((k) => (/^[0-9a-f]{64}$/i.test(k) ? Buffer.from(k, 'hex') : Buffer.from(k, 'base64')));
  if (keys.length === 0 || keys.some((k) => k.length !== 32)) {
    return { problem: 'WEBHOOK_ENCRYPTION_KEYS must be one or more comma-separated 32-byte keys, each base64 (openssl rand -base64 32) or 64 hex digits' };
  }
  return { keys };
}

/** 95 % of V8's heap limit: past it the process is close to dying of OOM, so shedding load lets GC catch up. */
function defaultMaxHeapMb(): number {
  return Math.floor((getHeapStatistics().heap_size_limit * 0.95) / (1024 * 1024));
}

const ENVIRONMENTS: readonly Environment[] = ['development', 'staging', 'production'];
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

type Env = Record<string, string | undefined>;

/**
 * Reads and validates the environment once. Every problem is collected so that an operator fixes
 * them all in one deploy instead of discovering them one restart at a time. `kind` says which process
 * reads it: only the web process needs PORT, PUBLIC_URL, S3 and CORS (REQUIRED_BY_PROCESS).
 */
export function loadConfig(env: Env = process.env, kind: ProcessKind = 'web'): Config {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  const environment = (get('ENVIRONMENT') ?? 'development') as Environment;
  if (!ENVIRONMENTS.includes(environment)) {
    problems.push(`ENVIRONMENT must be one of ${ENVIRONMENTS.join(', ')} (got "${environment}")`);
  }
  const deployed = environment === 'staging' || environment === 'production';

  const derivedPublicUrl = derivePublicUrl(get);
  if (deployed) {
    const required: readonly string[] = REQUIRED_BY_PROCESS[kind];
    const missing = required.filter((name) => (name === 'PUBLIC_URL' ? derivedPublicUrl : get(name)) === undefined);
    if (missing.length > 0) problems.push(`missing required variables: ${missing.join(', ')}`);
    if (missing.includes('PUBLIC_URL')) {
      problems.push(
        'PUBLIC_URL is the https:// address clients reach the API at (the OpenAPI server entry and the /docs page use it); ' +
          'on Heroku it is derived from HEROKU_APP_DEFAULT_DOMAIN_NAME (heroku labs:enable runtime-dyno-metadata) when unset',
      );
    }
  }

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = get(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  const logLevel = (get('LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`);
  }

  const port = int('PORT', 8080, 0, 65535);
  const databaseUrl = get('DATABASE_URL');
  const databaseSsl = get('DATABASE_SSL')?.toLowerCase();
  if (databaseSsl !== undefined && !['off', 'no-verify', 'verify'].includes(databaseSsl)) {
    problems.push(`DATABASE_SSL must be off, no-verify or verify (got "${databaseSsl}")`);
  }
  const poolUrl = get('DATABASE_CONNECTION_POOL_URL');
  const readUrl = get('DATABASE_READ_URL');
  for (const [name, value] of [['DATABASE_URL', databaseUrl], ['DATABASE_CONNECTION_POOL_URL', poolUrl], ['DATABASE_READ_URL', readUrl]] as const) {
    if (value && !/^postgres(ql)?:\/\//.test(value)) problems.push(`${name} must be a postgres:// or postgresql:// URL`);
  }
  if ((poolUrl || readUrl) && !databaseUrl) {
    problems.push('DATABASE_CONNECTION_POOL_URL and DATABASE_READ_URL need DATABASE_URL (the primary, for migrations and writes)');
  }

  const redisUrl = get('REDIS_URL');
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push('REDIS_URL must be a redis:// or rediss:// URL');

  const domain = get('AUTH0_DOMAIN')?.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const issuerBaseUrl = get('AUTH0_ISSUER_BASE_URL');
  const devIssuer = environment === 'development' && !domain && !issuerBaseUrl;
  if (deployed && kind === 'web' && !domain && !issuerBaseUrl) {
    problems.push('the development token issuer cannot run in staging or production: set AUTH0_DOMAIN');
  }

  const publicUrl = derivedPublicUrl ?? `http://localhost:${port}`;
  if (derivedPublicUrl && !/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(derivedPublicUrl)) {
    problems.push(`PUBLIC_URL must be an absolute http(s) URL like https://api.kendallsnails.com (got "${derivedPublicUrl}")`);
  }

  const bucket = get('S3_BUCKET_NAME');
  if (deployed && kind === 'web' && !bucket && !problems.some((p) => p.startsWith('missing'))) {
    problems.push('S3_BUCKET_NAME is required in staging and production');
  }

  const origins = (get('CORS_ALLOWED_ORIGINS') ?? (deployed ? '' : 'http://localhost:3000,http://localhost:5173'))
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  for (const origin of origins) {
    if (origin === '*' || !/^https?:\/\/[^/*]+$/.test(origin)) {
      problems.push(`CORS_ALLOWED_ORIGINS entries must be exact origins like https://app.example.com (got "${origin}")`);
    }
  }

  const stripeSecretKey = get('STRIPE_SECRET_KEY');
  const stripeWebhookSecret = get('STRIPE_WEBHOOK_SECRET');
  if (Boolean(stripeSecretKey) !== Boolean(stripeWebhookSecret)) {
    problems.push('set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET together (or neither, to record payments by hand only)');
  }
  if (stripeSecretKey && !/^(sk|rk)_(test|live)_\S+$/.test(stripeSecretKey)) {
    problems.push('STRIPE_SECRET_KEY must be a Stripe secret or restricted key (sk_live_…, sk_test_…, rk_…)');
  }
  if (stripeWebhookSecret && !/^whsec_\S+$/.test(stripeWebhookSecret)) {
    problems.push('STRIPE_WEBHOOK_SECRET must be the endpoint\'s signing secret (whsec_…)');
  }
  const appUrl = (get('APP_URL') ?? origins[0] ?? publicUrl).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s]+(\/\S*)?$/.test(appUrl)) problems.push(`APP_URL must be an http(s) URL (got "${appUrl}")`);
  if (deployed && stripeSecretKey && !get('APP_URL')) problems.push('APP_URL is required with STRIPE_SECRET_KEY in staging and production');

  // An identifier, so that LISTEN needs no quoting and Redis keys stay readable.
  const liveChannel = get('LIVE_CHANNEL') ?? 'kn_live';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(liveChannel)) problems.push(`LIVE_CHANNEL must be 1–63 lowercase letters, digits or underscores (got "${liveChannel}")`);
  const webhookKeys = parseKeys(get('WEBHOOK_ENCRYPTION_KEYS'));
  if ('problem' in webhookKeys) problems.push(webhookKeys.problem);

  const trustProxy = parseTrustProxy(get('TRUST_PROXY'));
  if ('problem' in trustProxy) problems.push(trustProxy.problem);

  const smtpUrl = deriveSmtpUrl(get);
  const smtp = smtpUrl === undefined ? undefined : parseSmtpUrl(smtpUrl);
  if (smtp && 'problem' in smtp) problems.push(smtp.problem);
  const mailFrom = get('MAIL_FROM');
  if (mailFrom !== undefined && !MAIL_FROM_PATTERN.test(mailFrom)) {
    problems.push(`MAIL_FROM must be one address, "Name <notifications@example.com>" or notifications@example.com (got "${mailFrom}")`);
  }
  // The default From's domain is nobody's: a real SMTP relay would refuse it or mark it as spam.
  if (deployed && smtpUrl && !mailFrom) problems.push('MAIL_FROM is required with SMTP_URL in staging and production (an address on the domain verified with the mail provider)');

  const config: Config = {
    environment,
    port,
    host: get('HOST') ?? '0.0.0.0',
    publicUrl,
    logLevel,
    dataDir: path.resolve(get('DATA_DIR') ?? './.data'),
    database: {
      url: databaseUrl,
      poolUrl,
      readUrl,
      readMaxLagS: int('DATABASE_READ_MAX_LAG_S', 5, 1, 3600),
      ssl: databaseSsl as Config['database']['ssl'],
      poolMax: int('DB_POOL_MAX', 10, 1, 500),
      connectionTimeoutMs: int('DB_CONNECTION_TIMEOUT_MS', 5000, 100, 60000),
      idleTimeoutMs: int('DB_IDLE_TIMEOUT_MS', 30000, 1000, 600000),
      statementTimeoutMs: int('DB_STATEMENT_TIMEOUT_MS', 10000, 100, 120000),
    },
    auth0: {
      domain,
      audience: get('AUTH0_AUDIENCE') ?? 'https://api.kendallsnails.com',
      clientId: get('AUTH0_CLIENT_ID'),
      clientSecret: get('AUTH0_CLIENT_SECRET'),
      issuerBaseUrl,
      roleClaim: get('AUTH0_ROLE_CLAIM') ?? 'https://kendallsnails.com/role',
      connection: get('AUTH0_CONNECTION') ?? 'Username-Password-Authentication',
    },
    devIssuer,
    s3: bucket
      ? {
          bucket,
          region: get('AWS_REGION') ?? 'us-east-1',
          accessKeyId: get('AWS_ACCESS_KEY_ID'),
          secretAccessKey: get('AWS_SECRET_ACCESS_KEY'),
          endpoint: get('S3_ENDPOINT'),
          forcePathStyle: bool('S3_FORCE_PATH_STYLE', false),
        }
      : undefined,
    corsAllowedOrigins: origins,
    trustProxy: 'value' in trustProxy ? trustProxy.value : false,
    rateLimit: {
      enabled: bool('RATE_LIMIT_ENABLED', true),
      redisUrl,
      redisTimeoutMs: int('REDIS_TIMEOUT_MS', 500, 50, 10000),
      keyPrefix: get('RATE_LIMIT_KEY_PREFIX') ?? 'kn:rl:',
    },
    loadShedding: {
      maxEventLoopDelayMs: int('LOAD_MAX_EVENT_LOOP_DELAY_MS', 1000, 0, 60000),
      maxHeapUsedMb: int('LOAD_MAX_HEAP_USED_MB', defaultMaxHeapMb(), 0, 1_000_000),
      maxRssMb: int('LOAD_MAX_RSS_MB', 0, 0, 1_000_000),
      maxDbWaiting: int('LOAD_MAX_DB_WAITING', 100, 0, 100_000),
      sampleIntervalMs: int('LOAD_SAMPLE_INTERVAL_MS', 1000, 10, 60000),
    },
    maxUploadSizeMb: int('MAX_UPLOAD_SIZE_MB', 10, 1, 100),
    stripe: stripeSecretKey && stripeWebhookSecret ? { secretKey: stripeSecretKey, webhookSecret: stripeWebhookSecret } : undefined,
    appUrl,
    mail: {
      smtp: smtp && 'value' in smtp ? smtp.value : undefined,
      from: mailFrom ?? '"Kendall\'s Nails" <notifications@localhost>',
    },
    basePriceCents: int('BASE_PRICE_CENTS', 2500, 1, 10_000_000),
    turnaroundBusinessDays: int('TURNAROUND_BUSINESS_DAYS', DEFAULT_TURNAROUND_BUSINESS_DAYS, 1, 365),
    currency: (get('CURRENCY') ?? 'USD').toUpperCase(),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 25000, 1000, 28000),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 25000, 1000, 29000),
    storageCleanupIntervalMs: int('STORAGE_CLEANUP_INTERVAL_MS', 60000, 100, 3_600_000),
    stream: {
      redisUrl,
      channel: liveChannel,
      heartbeatMs: int('STREAM_HEARTBEAT_MS', 15000, 10, 50000),
      retryMs: int('STREAM_RETRY_MS', 3000, 100, 600000),
      maxPerUser: int('STREAM_MAX_PER_USER', 5, 1, 100),
      maxPerProcess: int('STREAM_MAX_PER_PROCESS', 1000, 1, 100000),
      ticketTtlS: int('STREAM_TICKET_TTL_S', 30, 1, 60),
    },
    webhooks: { encryptionKeys: 'keys' in webhookKeys ? webhookKeys.keys : undefined },
    worker: {
      inProcess: bool('WORKER_IN_PROCESS', !deployed),
      pollIntervalS: int('WORKER_POLL_INTERVAL_MS', 1000, 500, 60_000) / 1000,
      batchSize: int('WORKER_BATCH_SIZE', 20, 1, 500),
      retryLimit: int('WORKER_RETRY_LIMIT', 8, 0, 100),
      retryDelayS: int('WORKER_RETRY_DELAY_S', 5, 1, 3600),
      retryDelayMaxS: int('WORKER_RETRY_DELAY_MAX_S', 3600, 1, 86_400),
      jobTimeoutS: int('WORKER_JOB_TIMEOUT_S', 120, 10, 3600),
    },
  };

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Issuer URL exactly as it appears in the `iss` claim (Auth0 keeps the trailing slash). */
export function issuerUrl(config: Config): string {
  if (config.devIssuer) return `${config.publicUrl}/`;
  const base = config.auth0.issuerBaseUrl ?? `https://${config.auth0.domain}/`;
  return base.endsWith('/') ? base : `${base}/`;
}
