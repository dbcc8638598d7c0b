import { shorten } from '../../lib/text.js';
import type { Category, EventType, Notice } from './events.js';

/**
 * The email that tells one person about one event: a template per event type, rendered as plain text and as HTML
 * from the same parts so the two never say different things. Everything that came from a person (names, feedback,
 * tracking numbers, titles built from them) is escaped in the HTML; nothing here reads the database or another
 * person's address: the Notice is all there is.
 */

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

export interface RenderContext {
  /** APP_URL, without a trailing slash. */
  appUrl: string;
  recipientName: string;
  /** The preference category that lets the recipient switch this email off; null: it cannot be. */
  category: Category | null;
}

/** Where the recipient switches email categories off (the List-Unsubscribe target and the footer link). */
export const PREFERENCES_PATH = '/settings/notifications';

const STATUS_LABELS: Record<string, string> = {
  submitted: 'Submitted',
  under_review: 'Under review',
  accepted: 'Accepted',
  rejected: 'Rejected',
  in_production: 'In production',
  shipped: 'Shipped',
  delivered: 'Delivered',
};

const CATEGORY_LABELS: Record<Category, string> = {
  order_updates: 'emails about your orders',
  messages: 'emails about new messages',
  gallery: 'emails about your gallery designs',
};

export function statusLabel(status: string): string {
  return STATUS_LABELS[status] ?? status.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

/** `#3F9A12BC`, whether or not the caller already put the `#` in. */
export function orderNumber(notice: Notice): string | undefined {
  const n = notice.order?.number;
  return n ? `#${n.replace(/^#/, '')}` : undefined;
}

/**
 * A price in the currency's own minor unit (cents for USD, none for JPY), so `total_price_cents` means "the
 * smallest unit" whatever the currency is; an unknown code still shows the amount rather than failing the email.
 */
export function formatPrice(minorUnits: number, currency = 'USD'): string {
  try {
    const format = new Intl.NumberFormat('en-US', { style: 'currency', currency });
    const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
    return format.format(minorUnits / 10 ** digits);
  } catch {
    return `${(minorUnits / 100).toFixed(2)} ${currency}`;
  }
}

type Fact = [label: string, value: string];

interface Template {
  /** After "Order #N · Status" in the subject: the one fact worth seeing in the inbox list. */
  detail?(notice: Notice): string | undefined;
  /** Label/value lines under the body. */
  facts?(notice: Notice): Fact[];
  /** Longer text a person wrote, shown as a quotation (the technician's feedback). */
  quote?(notice: Notice): { label: string; text: string } | undefined;
  /** The button's words. */
  action: string;
}

const price = (n: Notice) =>
  typeof n.order?.total_price_cents === 'number' ? formatPrice(n.order.total_price_cents, n.order.currency) : undefined;
const tracking = (n: Notice) =>
  [n.order?.carrier, n.order?.tracking_number].filter((part): part is string => typeof part === 'string' && part.trim() !== '').join(' ') ||
  undefined;

const TEMPLATES: Record<EventType, Template> = {
  'order.submitted': { action: 'View the order' },
  'order.assigned': { detail: () => 'technician assigned', action: 'View the order' },
  'order.accepted': {
    detail: price,
    facts: (n) => (price(n) ? [['Total', price(n)!]] : []),
    action: 'Review and pay',
  },
  'order.rejected': {
    detail: () => 'changes requested',
    quote: (n) => (n.order?.feedback ? { label: 'Feedback from your technician', text: n.order.feedback } : undefined),
    action: 'Revise the design',
  },
  'order.revised': { detail: () => 'design revised', action: 'Review the revision' },
  'order.paid': {
    detail: () => 'payment received',
    facts: (n) => (price(n) ? [['Paid', price(n)!]] : []),
    action: 'View the order',
  },
  'order.in_production': { action: 'View the order' },
  'order.shipped': {
    detail: tracking,
    facts: (n) => {
      const facts: Fact[] = [];
      if (n.order?.carrier) facts.push(['Carrier', n.order.carrier]);
      if (n.order?.tracking_number) facts.push(['Tracking number', n.order.tracking_number]);
      return facts;
    },
    action: 'Track the order',
  },
  'order.delivered': { action: 'Rate your nails' },
  'order.ship_by_tomorrow': { detail: () => 'ships by tomorrow', action: 'Open the order' },
  'message.created': { detail: () => 'new message', action: 'Read and reply' },
  'comment.created': { action: 'See the comment' },
  'design.reused': { action: 'See your design' },
  'technician.invited': { action: 'Accept the invitation' },
  'webhook.disabled': { action: 'Review the webhook' },
};

/** A header value: one line, no control characters, bounded (a title is user-influenced). */
const oneLine = (s: string, max = 200) => shorten(s.replace(/\p{Cc}+/gu, ' ').replace(/\s+/g, ' ').trim(), max);

export function subjectOf(notice: Notice): string {
  const number = orderNumber(notice);
  if (!number || !notice.order) return oneLine(notice.title);
  const detail = TEMPLATES[notice.type]?.detail?.(notice);
  return oneLine([`Order ${number}`, statusLabel(notice.order.status), detail].filter(Boolean).join(' · '));
}

/** `${APP_URL}${link}`, where link is always a path on the front end (never another host, even if malformed). */
export function linkOf(appUrl: string, link: string): string {
  const path = `/${link.trim().replace(/^[/\\]+/, '')}`;
  return `${appUrl.replace(/\/+$/, '')}${path}`;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
/** Escaped, with the writer's line breaks kept. */
const escapeMultiline = (s: string) => escapeHtml(s).replace(/\r\n|\r|\n/g, '<br>\n');

export function renderEmail(notice: Notice, ctx: RenderContext): RenderedEmail {
  const template: Template = TEMPLATES[notice.type] ?? { action: 'Open Kendall’s Nails' };
  const url = linkOf(ctx.appUrl, notice.link);
  const preferencesUrl = linkOf(ctx.appUrl, PREFERENCES_PATH);
  const number = orderNumber(notice);
  const facts: Fact[] = [];
  if (number && notice.order) {
    facts.push(['Order', number], ['Status', statusLabel(notice.order.status)]);
  }
  facts.push(...(template.facts?.(notice) ?? []));
  const quote = template.quote?.(notice);
  const name = oneLine(ctx.recipientName, 100) || 'there';
  const why = ctx.category
    ? `You get this email because ${CATEGORY_LABELS[ctx.category]} are on for your account. Turn them off at`
    : 'This email is about your account and cannot be switched off.';

  const text = [
    `Hi ${name},`,
    '',
    notice.title,
    '',
    notice.body,
    ...(facts.length ? ['', ...facts.map(([label, value]) => `${label}: ${value}`)] : []),
    ...(quote ? ['', `${quote.label}:`, ...quote.text.split(/\r\n|\r|\n/).map((line) => `> ${line}`)] : []),
    '',
    `${template.action}: ${url}`,
    '',
    '-- ',
    'Kendall’s Nails',
    ctx.category ? `${why} ${preferencesUrl}` : why,
    '',
  ].join('\n');

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(subjectOf(notice))}</title>
</head>
<body style="margin:0;padding:24px;background:#faf7f5;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#2d2a32;line-height:1.5">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:24px">
<p style="margin:0 0 16px">Hi ${escapeHtml(name)},</p>
<h1 style="font-size:20px;margin:0 0 12px">${escapeHtml(notice.title)}</h1>
<p style="margin:0 0 16px">${escapeMultiline(notice.body)}</p>
${
  facts.length
    ? `<table role="presentation" style="border-collapse:collapse;margin:0 0 16px">\n${facts
        .map(
          ([label, value]) =>
            `<tr><th scope="row" style="text-align:left;padding:2px 16px 2px 0;font-weight:600">${escapeHtml(label)}</th><td style="padding:2px 0">${escapeHtml(value)}</td></tr>`,
        )
        .join('\n')}\n</table>\n`
    : ''
}${
  quote
    ? `<p style="margin:0 0 4px;font-weight:600">${escapeHtml(quote.label)}</p>\n<blockquote style="margin:0 0 16px;padding:8px 12px;border-left:3px solid #d8a7b1;background:#fdf3f5">${escapeMultiline(quote.text)}</blockquote>\n`
    : ''
}<p style="margin:24px 0"><a href="${escapeHtml(url)}" style="display:inline-block;background:#b5446e;color:#ffffff;text-decoration:none;padding:10px 18px;border-radius:6px">${escapeHtml(template.action)}</a></p>
<p style="margin:0;font-size:12px;color:#77707a">Kendall’s Nails. ${escapeHtml(why)}${
    ctx.category ? ` <a href="${escapeHtml(preferencesUrl)}" style="color:#77707a">${escapeHtml(preferencesUrl)}</a>.` : ''
  }</p>
</div>
</body>
</html>
`;

  return { subject: subjectOf(notice), text, html };
}
