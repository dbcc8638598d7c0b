import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, type ErrorCode } from '../errors.js';
import { isDatabaseUnavailable } from '../db/errors.js';

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Turns Ajv issues into `{field: message}` so a form can show each message beside its field. */
export function validationDetails(issues: AjvIssue[], context?: string): Record<string, string> {
  const details: Record<string, string> = {};
  for (const issue of issues) {
    let field = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    let message = issue.message ?? 'is invalid';
    if (issue.keyword === 'required' && typeof issue.params?.missingProperty === 'string') {
      field = field ? `${field}.${issue.params.missingProperty}` : issue.params.missingProperty;
      message = 'is required';
    } else if (issue.keyword === 'additionalProperties' && typeof issue.params?.additionalProperty === 'string') {
      field = field ? `${field}.${issue.params.additionalProperty}` : issue.params.additionalProperty;
      message = 'is not an accepted field';
    } else if (issue.keyword === 'discriminator' && typeof issue.params?.tag === 'string') {
      // A union body whose tag (e.g. review's `action`) is missing or names no branch.
      field = field ? `${field}.${issue.params.tag}` : issue.params.tag;
      message = 'is missing or not one of the accepted values';
    } else if (issue.keyword === 'enum' && Array.isArray(issue.params?.allowedValues)) {
      message = `must be one of: ${issue.params.allowedValues.join(', ')}`;
    }
    // Field names come from the client: keep an answer to a body with thousands of odd keys small.
    const name = field || context || 'request';
    const key = name.length > MAX_FIELD_NAME ? `${name.slice(0, MAX_FIELD_NAME)}…` : name;
    if (key in details) continue;
    if (Object.keys(details).length === MAX_DETAILS) {
      details['…'] = 'more fields are invalid; fix these first';
      break;
    }
    details[key] = message;
  }
  return details;
}

const MAX_DETAILS = 20;
const MAX_FIELD_NAME = 100;

function send(reply: FastifyReply, status: number, code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return reply.code(status).send({ success: false, error: details ? { code, message, details } : { code, message } });
}

/** Maps a Fastify or plugin error (they carry statusCode and an FST_ code) onto our codes. */
function frameworkError(err: FastifyError): { status: number; code: ErrorCode; message: string } | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large. JSON bodies may be at most 100 KB.' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send JSON (application/json) or, for uploads, multipart/form-data.' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'INVALID_JSON', message: 'The body is empty but Content-Type says JSON: send a JSON object or drop the header.' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'INVALID_JSON', message: 'The body is not valid JSON.' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'BAD_REQUEST', message: 'Content-Length does not match the body.' };
    case 'FST_REQ_FILE_TOO_LARGE':
      return { status: 413, code: 'FILE_TOO_LARGE', message: 'The file is too large.' };
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return { status: 400, code: 'TOO_MANY_PARTS', message: 'Send one file in the "image" field and only the documented form fields.' };
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Uploads must be multipart/form-data.' };
    case 'FST_ERR_VALIDATION':
      return undefined;
    default:
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        if (err instanceof SyntaxError) return { status: 400, code: 'INVALID_JSON', message: 'The body is not valid JSON.' };
        return { status: err.statusCode, code: 'BAD_REQUEST', message: 'The request could not be read. Check its headers and body.' };
      }
      return undefined;
  }
}

/**
 * Errors the router raises before any route or hook runs (Fastify's `frameworkErrors` option): a URL
 * that does not decode, or a path parameter longer than the router accepts. Without this they answer
 * in Fastify's own shape, echoing the whole URL back.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.header('x-request-id', request.id);
  request.log.info({ code: err.code }, 'request refused by the router');
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return send(reply, 400, 'BAD_URL', 'A value in the URL is too long. Check the id in the path.');
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    return send(reply, 400, 'BAD_URL', 'The URL is not valid: a percent-encoded part does not decode to UTF-8.');
  }
  return send(reply, err.statusCode && err.statusCode < 500 ? err.statusCode : 400, 'BAD_REQUEST', 'The request could not be routed. Check its URL and headers.');
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers over 16 KB, a malformed request
 * line, Content-Length with chunked encoding, a request that times out): Fastify's clientErrorHandler
 * option, answering in the envelope instead of Fastify's own shape, then closing the connection.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message]: [number, ErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'The request took too long to arrive. Send it again.']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HEADERS_TOO_LARGE', 'The request headers are too large (at most 16 KB).']
        : [400, 'BAD_REQUEST', 'The request is not valid HTTP.'];
  const body = JSON.stringify({ success: false, error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

async function errorsPlugin(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError) {
      if (err.headers) reply.headers(err.headers);
      if (err.statusCode >= 500) request.log.error({ err }, err.message);
      return send(reply, err.statusCode, err.code, err.message, err.details);
    }
    if (err.validation) {
      const details = validationDetails(err.validation as AjvIssue[], err.validationContext);
      const fields = Object.keys(details).join(', ');
      return send(reply, 400, 'VALIDATION_ERROR', `Some fields are invalid: ${fields}. See details.`, details);
    }
    const mapped = frameworkError(err);
    if (mapped) return send(reply, mapped.status, mapped.code, mapped.message);
    if (err.statusCode === 429) {
      return send(reply, 429, 'RATE_LIMITED', err.message);
    }
    if (err.statusCode === 503) {
      reply.header('retry-after', '5');
      if (err.code === 'FST_ERR_HANDLER_TIMEOUT') {
        // handlerTimeout (app.ts) fired: answered before Heroku's router gives up at 30 s.
        request.log.error({ err }, 'request timed out');
        return send(reply, 503, 'SERVICE_UNAVAILABLE', 'The request took too long to process. Try again in a few seconds.');
      }
      return send(reply, 503, 'SERVICE_UNAVAILABLE', 'The service is busy. Try again in a few seconds.');
    }
    if (request.raw.socket?.destroyed) {
      // The client hung up (mid-upload, say): its socket errors (ECONNRESET, premature close) are not an outage.
      request.log.info({ clientAbort: true, err: { code: err.code, message: err.message } }, 'client closed the connection');
      return send(reply, 400, 'BAD_REQUEST', 'The connection closed before the request was complete.');
    }
    if (isDatabaseUnavailable(err)) {
      request.log.error({ err }, 'database unavailable');
      reply.header('retry-after', '5');
      return send(reply, 503, 'DATABASE_UNAVAILABLE', 'The database is unavailable. Try again in a few seconds.');
    }
    request.log.error({ err }, 'unhandled error');
    return send(reply, 500, 'INTERNAL_ERROR', `Something went wrong on our side. Quote request id ${request.id} if you contact support.`);
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, 404, 'NOT_FOUND', `There is no ${request.method} ${request.url.split('?')[0]} endpoint. See /docs for the API reference.`),
  );
}

export default fp(errorsPlugin, { name: 'errors' });
