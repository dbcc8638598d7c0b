/**
 * The catalogue of error codes clients branch on: the one place that says which codes exist, the HTTP
 * status each answers with, and what it means. Services throw `fail(code, message)`; the error plugin
 * turns it (and everything else) into the SPEC §6 envelope, and the OpenAPI document lists each
 * operation's codes as an enum drawn from here.
 */
export const ERRORS = {
  // 400: the request itself is malformed or invalid
  VALIDATION_ERROR: { status: 400, description: 'A field, parameter or header is invalid; `details` names each one.' },
  INVALID_JSON: { status: 400, description: 'The body is not valid JSON.' },
  BAD_REQUEST: { status: 400, description: 'The request could not be read (headers, framing).' },
  BAD_URL: { status: 400, description: 'The URL does not decode or a path value is too long.' },
  INVALID_IDEMPOTENCY_KEY: { status: 400, description: 'Idempotency-Key is not 1–255 printable characters.' },
  EMAIL_REQUIRED: { status: 400, description: 'The account has no email address to register with.' },
  INVALID_FILE_FORMAT: { status: 400, description: 'The upload is not a PNG (name, declared type or signature).' },
  INVALID_FILE_NAME: { status: 400, description: 'The file name is missing or carries a path or control characters.' },
  INVALID_IMAGE: { status: 400, description: 'The PNG is truncated, corrupt or a decompression bomb; `details.problem` says which.' },
  INVALID_IMAGE_DIMENSIONS: { status: 400, description: 'Width or height is outside 100–4096 pixels.' },
  UNEXPECTED_FILE_FIELD: { status: 400, description: 'A file arrived in a field other than `image`.' },
  TOO_MANY_FILES: { status: 400, description: 'More than one file was sent.' },
  TOO_MANY_PARTS: { status: 400, description: 'The form has more parts than the documented fields.' },
  MALFORMED_MULTIPART: { status: 400, description: 'The multipart body is incomplete or malformed.' },
  INVALID_WEBHOOK_SIGNATURE: { status: 400, description: 'The Stripe-Signature header is missing, forged or too old; nothing was changed.' },
  // 401
  UNAUTHORIZED: { status: 401, description: 'No access token was sent.' },
  INVALID_TOKEN: { status: 401, description: 'The access token is malformed, invalid or expired.' },
  INVALID_STREAM_TICKET: { status: 401, description: 'The stream ticket is unknown, expired or already used; get a new one from POST /api/v1/stream/tickets.' },
  // 403
  FORBIDDEN: { status: 403, description: 'Your role may not do this.' },
  NOT_ASSIGNED: { status: 403, description: 'The order is assigned to another technician.' },
  LINK_EXPIRED: { status: 403, description: 'The signed image link has expired.' },
  INVALID_SIGNATURE: { status: 403, description: 'The signed image link is not valid.' },
  HTTPS_REQUIRED: { status: 403, description: 'The request came over plain HTTP; staging and production answer HTTPS only (GET and HEAD are redirected).' },
  // 404
  NOT_FOUND: { status: 404, description: 'No such endpoint.' },
  USER_NOT_FOUND: { status: 404, description: 'No profile exists for this account yet.' },
  ORDER_NOT_FOUND: { status: 404, description: 'No such order among those you can see.' },
  DESIGN_NOT_FOUND: { status: 404, description: 'No such design among those you can see.' },
  COMMENT_NOT_FOUND: { status: 404, description: 'No such comment among those you can see or act on.' },
  WEBHOOK_NOT_FOUND: { status: 404, description: 'No such webhook among yours.' },
  WEBHOOK_DELIVERY_NOT_FOUND: { status: 404, description: 'No such delivery of this webhook.' },
  REPORT_NOT_FOUND: { status: 404, description: 'No such report.' },
  NOTIFICATION_NOT_FOUND: { status: 404, description: 'No such notification among yours.' },
  FILE_NOT_FOUND: { status: 404, description: 'The image no longer exists.' },
  // 408, 409, 413, 415, 422, 429, 431
  REQUEST_TIMEOUT: { status: 408, description: 'The request took too long to arrive.' },
  USER_EXISTS: { status: 409, description: 'A profile or identity-provider account already exists.' },
  EMAIL_IN_USE: { status: 409, description: 'Another account is registered with this email address.' },
  ALREADY_INVITED: { status: 409, description: 'A pending invitation exists for this email.' },
  ALREADY_REPORTED: { status: 409, description: 'You have already reported this design or comment.' },
  IDEMPOTENCY_REQUEST_IN_PROGRESS: { status: 409, description: 'A request with this Idempotency-Key is still running.' },
  PAYLOAD_TOO_LARGE: { status: 413, description: 'The JSON body is larger than 100 KB.' },
  FILE_TOO_LARGE: { status: 413, description: 'The image is larger than MAX_UPLOAD_SIZE_MB.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The body is neither JSON nor, for uploads, multipart/form-data.' },
  INVALID_STATE: { status: 422, description: 'The workflow does not allow this move from the current status; `details.current_status`.' },
  OWN_ORDER: { status: 422, description: 'You are this order’s customer, so you may not act on it as its technician.' },
  ORDER_ALREADY_ASSIGNED: { status: 422, description: 'The order already has a technician.' },
  PAYMENT_REQUIRED: { status: 422, description: 'Production cannot start before the order is paid.' },
  ALREADY_PAID: { status: 422, description: 'The order is already paid.' },
  WEBHOOK_URL_NOT_ALLOWED: {
    status: 422,
    description:
      'The webhook URL is refused: not https, carries credentials, does not resolve, or reaches a private, loopback or link-local address (staging and production); `details.problem` says which.',
  },
  WEBHOOK_LIMIT_REACHED: { status: 422, description: 'You have as many webhooks as one technician may have; delete one first.' },
  WEBHOOK_DISABLED: { status: 422, description: 'The webhook is disabled; enable it before re-sending a delivery.' },
  RATING_LOCKED: { status: 422, description: 'The rating’s editing window has closed; it can no longer be changed.' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, description: 'The Idempotency-Key was used for a different request.' },
  RATE_LIMITED: { status: 429, description: 'Too many requests; wait `Retry-After` seconds.' },
  TOO_MANY_STREAMS: { status: 429, description: 'You already have as many live streams open as allowed (STREAM_MAX_PER_USER); close one first.' },
  HEADERS_TOO_LARGE: { status: 431, description: 'The request headers are larger than 16 KB.' },
  // 5xx
  INTERNAL_ERROR: { status: 500, description: 'An unexpected error; quote the request id.' },
  IDENTITY_PROVIDER_ERROR: { status: 502, description: 'Auth0 failed or refused the call; nothing was saved.' },
  SERVICE_UNAVAILABLE: { status: 503, description: 'Overloaded, or the request ran past the time limit; retry after `Retry-After`.' },
  DATABASE_UNAVAILABLE: { status: 503, description: 'The database is unavailable; retry after `Retry-After`.' },
  STORAGE_UNAVAILABLE: { status: 503, description: 'Image storage is unavailable; nothing was saved.' },
  IDENTITY_PROVIDER_UNAVAILABLE: { status: 503, description: 'The identity provider cannot be reached to check the token.' },
  IDENTITY_PROVIDER_NOT_CONFIGURED: { status: 503, description: 'The Auth0 Management API is not configured.' },
  PAYMENTS_NOT_CONFIGURED: { status: 503, description: 'Online payment (Stripe) is not configured; the technician records payments by hand.' },
  WEBHOOKS_NOT_CONFIGURED: { status: 503, description: 'Webhooks need WEBHOOK_ENCRYPTION_KEYS on this server; nothing was saved.' },
  PAYMENT_PROVIDER_UNAVAILABLE: { status: 503, description: 'Stripe failed or did not answer in time; nothing was saved.' },
  STREAM_CAPACITY_REACHED: { status: 503, description: 'This server holds as many live streams as it can (STREAM_MAX_PER_PROCESS); retry after `Retry-After`, another server may take it.' },
  DEPENDENCY_UNAVAILABLE: { status: 503, description: 'A dependency checked by /health is down.' },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ERRORS;

export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERRORS, code);

/** An error with a catalogued code; its HTTP status comes from the catalogue. */
export class AppError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
    this.statusCode = ERRORS[code].status;
  }
}

/** The one way to raise a client-facing error: a catalogued code and a message a person can act on. */
export const fail = (code: ErrorCode, message: string, details?: Record<string, unknown>) => new AppError(code, message, details);

export const validationError = (message: string, details?: Record<string, unknown>) => fail('VALIDATION_ERROR', message, details);

export const unauthorized = (code: 'UNAUTHORIZED' | 'INVALID_TOKEN' = 'UNAUTHORIZED', message = 'Sign in: send a valid access token as "Authorization: Bearer <token>".') =>
  fail(code, message);

/** A 503 that tells the client when to retry. */
export const serviceUnavailable = (code: ErrorCode, message: string, retryAfterSeconds = 5) =>
  new AppError(code, message, undefined, { 'retry-after': String(retryAfterSeconds) });

/** The one rule for a transition the workflow does not draw (SPEC §3). */
export const invalidTransition = (current: string, requested: string) =>
  fail('INVALID_STATE', `An order that is ${current} cannot move to ${requested}.`, {
    current_status: current,
    requested_status: requested,
  });
