import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { WEBHOOK_URL_MAX_LENGTH } from './webhooks.domain.js';

/**
 * Where a webhook may point (SSRF). In staging and production: `https` only, to a host every one of whose
 * addresses is a public unicast address. Checked when the URL is saved and again before every attempt, and
 * the attempt connects to the very address that passed (delivery.ts pins it), so a name that resolves to a
 * public address at check time and to 127.0.0.1 a moment later (DNS rebinding) never reaches the inside.
 * Development allows `http` and any address, so tests can run a receiver on localhost.
 */

/** Resolves a host name to every address it has (the system resolver by default; tests inject their own). */
export type Resolve = (hostname: string) => Promise<Array<{ address: string; family: 4 | 6 }>>;

export const systemResolve: Resolve = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

export type UrlProblem =
  | 'malformed'
  | 'scheme'
  | 'credentials'
  | 'unresolvable'
  | 'private_address';

export class UrlRefused extends Error {
  constructor(
    readonly problem: UrlProblem,
    message: string,
    readonly address?: string,
  ) {
    super(message);
    this.name = 'UrlRefused';
  }
}

/**
 * Not reachable from the public internet, or not meant to be connected to (RFC 6890 special-purpose
 * registries): private, loopback, link-local, CGNAT, documentation, benchmarking, multicast and reserved.
 */
const BLOCKED_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata endpoints live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
];

/**
 * IPv6 is allowed only inside 2000::/3 (global unicast), less the parts of it that are not really public.
 * Everything else (::1, ::, fc00::/7 unique-local, fe80::/10 link-local, ff00::/8 multicast, the
 * IPv4-mapped ::ffff:0:0/96 and IPv4-compatible forms, 64:ff9b::/96 NAT64) is refused outright.
 */
const GLOBAL_V6 = new BlockList();
GLOBAL_V6.addSubnet('2000::', 3, 'ipv6');
const BLOCKED_V6: Array<[string, number]> = [
  ['2001::', 23], // IETF protocol assignments, Teredo (2001::/32) included
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address the guard would not see
  ['3fff::', 20], // documentation (RFC 9637)
];

const blocked = new BlockList();
for (const [net, prefix] of BLOCKED_V4) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of BLOCKED_V6) blocked.addSubnet(net, prefix, 'ipv6');

/** True for an address a webhook may connect to in staging and production. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !blocked.check(address, 'ipv4');
  if (family === 6) {
    // BlockList matches an IPv4-mapped address against IPv4 rules; outside 2000::/3 refuses every mapped form anyway.
    return GLOBAL_V6.check(address, 'ipv6') && !blocked.check(address, 'ipv6');
  }
  return false;
}

/** The URL's host without IPv6 brackets. */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** Parses and checks the form of a webhook URL (no network); throws UrlRefused. */
export function parseWebhookUrl(raw: string, strict: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlRefused('malformed', 'The webhook URL is not an absolute URL such as https://example.com/hooks/kendalls.');
  }
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) throw new UrlRefused('malformed', `The webhook URL is longer than ${WEBHOOK_URL_MAX_LENGTH} characters.`);
  const schemes = strict ? ['https:'] : ['https:', 'http:'];
  if (!schemes.includes(url.protocol)) {
    throw new UrlRefused('scheme', strict ? 'Webhook URLs must use https://.' : 'Webhook URLs must use https:// (or http:// in development).');
  }
  // Credentials in the URL would be shown back in every listing and log line: receivers verify the signature instead.
  if (url.username || url.password) {
    throw new UrlRefused('credentials', 'Remove the user name and password from the webhook URL; verify the webhook-signature header instead.');
  }
  if (!bareHost(url)) throw new UrlRefused('malformed', 'The webhook URL has no host.');
  return url;
}

/**
 * The address an attempt connects to: the host's addresses, every one of them public when `strict`
 * (a name with one private address among public ones is refused: which one a client picks is not ours
 * to control). Throws UrlRefused.
 */
export async function resolveTarget(url: URL, strict: boolean, resolve: Resolve, timeoutMs = 10_000): Promise<{ address: string; family: 4 | 6 }> {
  const host = bareHost(url);
  const literal = isIP(host);
  let addresses: Array<{ address: string; family: 4 | 6 }>;
  if (literal) {
    addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  } else {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A resolver that never answers must not hold a delivery (or a request) past its time.
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      });
      addresses = await Promise.race([resolve(host), late]);
    } catch {
      addresses = [];
    } finally {
      clearTimeout(timer);
    }
    if (addresses.length === 0) {
      throw new UrlRefused('unresolvable', `The host ${host} of the webhook URL does not resolve to any address (or not in time); check its spelling and DNS.`);
    }
  }
  if (strict) {
    const inside = addresses.find((a) => !isPublicAddress(a.address));
    if (inside) {
      throw new UrlRefused(
        'private_address',
        `The webhook URL's host ${host} resolves to ${inside.address}, which is not a public internet address (private, loopback, link-local, ` +
          'shared or reserved). Use a URL your receiver is reachable at from the internet.',
        inside.address,
      );
    }
  }
  return addresses[0]!;
}

/**
 * Both checks when saving a URL: the form, then (staging and production) the addresses. Development checks the
 * form only: any address is allowed there, and a receiver started later on a name not yet resolvable is fine.
 */
export async function checkWebhookUrl(raw: string, strict: boolean, resolve: Resolve): Promise<URL> {
  const url = parseWebhookUrl(raw, strict);
  if (strict) await resolveTarget(url, strict, resolve);
  return url;
}
