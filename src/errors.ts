/**
 * Errors with stable codes that clients branch on. Services throw these; the error plugin turns
 * them (and everything else) into the SPEC §6 envelope.
 */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(400, code, message, details);
export const validationError = (message: string, details?: Record<string, unknown>) =>
  new AppError(400, 'VALIDATION_ERROR', message, details);
export const unauthorized = (code = 'UNAUTHORIZED', message = 'Sign in: send a valid access token as "Authorization: Bearer <token>".') =>
  new AppError(401, code, message);
export const forbidden = (code = 'FORBIDDEN', message = 'You are not allowed to do this.') =>
  new AppError(403, code, message);
export const notFound = (code: string, message: string) => new AppError(404, code, message);
export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(409, code, message, details);
export const payloadTooLarge = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(413, code, message, details);
export const unprocessable = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(422, code, message, details);
export const badGateway = (code: string, message: string) => new AppError(502, code, message);
export const serviceUnavailable = (code: string, message: string, retryAfterSeconds = 5) =>
  new AppError(503, code, message, undefined, { 'retry-after': String(retryAfterSeconds) });

/** The one rule for a transition the workflow does not draw (SPEC §3). */
export const invalidTransition = (current: string, requested: string) =>
  unprocessable('INVALID_STATE', `An order that is ${current} cannot move to ${requested}.`, {
    current_status: current,
    requested_status: requested,
  });
