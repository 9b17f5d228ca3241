import type { SimApi, SimResponse } from './simulator.types.ts';
import { expiredTokenResponse } from './auth-responses.ts';

/**
 * The bodies each injected fault answers with, in the dialect of the API the
 * request was addressed to — a collector must recognise a Graph error
 * envelope, an RWS OData error or IIS page, and an Entra ID (AADSTS) error,
 * so a fault in the wrong dialect would test nothing (docs/office365-apis.md §1–§3).
 */

/** Per-response facts the injector supplies so bodies are deterministic under the seed. */
export interface FaultContext {
  readonly nowMs: number;
  /** A GUID derived from the seed and the request number. */
  readonly requestId: string;
}

/** Microsoft Graph publishes this app id in its service-principal 401 (docs/office365-apis.md §1). */
const messageTraceAppId = '8bd644d1-64a1-4d4b-ae52-2e0cbf64e373';

const graphJson = { 'content-type': 'application/json; charset=utf-8' };
const rwsJson = { 'content-type': 'application/json;odata=minimalmetadata;streaming=true;charset=utf-8' };
const aadJson = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store, no-cache', pragma: 'no-cache' };
const html = { 'content-type': 'text/html; charset=utf-8' };

function retryAfterHeader(retryAfterS: number | undefined): Record<string, string> {
  return retryAfterS === undefined ? {} : { 'retry-after': String(retryAfterS) };
}

/** Graph's error envelope, with the `innerError` Graph adds to every error. */
function graphError(status: number, code: string, message: string, ctx: FaultContext, headers: Record<string, string> = {}): SimResponse {
  const body = {
    error: {
      code,
      message,
      innerError: {
        date: new Date(ctx.nowMs).toISOString().replace(/\.\d{3}Z$/, ''),
        'request-id': ctx.requestId,
        'client-request-id': ctx.requestId,
      },
    },
  };
  return { status, headers: { ...graphJson, 'request-id': ctx.requestId, ...headers }, body: JSON.stringify(body) };
}

/** The Reporting Web Service's JSON-light OData error (docs/office365-apis.md §2). */
function rwsODataError(status: number, message: string, headers: Record<string, string> = {}): SimResponse {
  const body = { 'odata.error': { code: '', message: { lang: 'en-US', value: message } } };
  return { status, headers: { ...rwsJson, ...headers }, body: JSON.stringify(body) };
}

/** What http.sys / IIS writes when the application pool is down. */
function iisServiceUnavailable(headers: Record<string, string>): SimResponse {
  const body =
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n' +
    '<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n' +
    '<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n' +
    '<BODY><h2>Service Unavailable</h2>\r\n<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n</BODY></HTML>\r\n';
  return { status: 503, headers: { 'content-type': 'text/html; charset=us-ascii', ...headers }, body };
}

/** Entra ID's token-endpoint error shape (docs/office365-apis.md §3). */
function aadstsError(status: number, error: string, code: number, description: string, ctx: FaultContext, headers: Record<string, string> = {}): SimResponse {
  const timestamp = new Date(ctx.nowMs).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
  const body = {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${ctx.requestId} Correlation ID: ${ctx.requestId} Timestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: ctx.requestId,
    correlation_id: ctx.requestId,
  };
  return { status, headers: { ...aadJson, ...headers }, body: JSON.stringify(body) };
}

/**
 * The page Exchange sometimes serves with status 200 instead of JSON (docs/office365-apis.md
 * §2): a collector must treat it as a failed page, never as zero rows.
 */
export function htmlSignInResponse(): SimResponse {
  const body =
    '<!DOCTYPE html>\r\n<html dir="ltr" lang="en"><head><meta charset="utf-8">' +
    '<title>Sign in to Outlook</title></head>\r\n<body><div id="lightbox">' +
    '<div class="title">Sign in to Outlook</div>' +
    '<form method="post" action="/owa/auth.owa"><input type="email" name="loginfmt"></form>' +
    '</div></body></html>\r\n';
  return { status: 200, headers: html, body };
}

/** 429 with Retry-After, for a `throttle` rule or the Graph quota. */
export function throttleResponse(api: SimApi, retryAfterS: number, ctx: FaultContext): SimResponse {
  const headers = retryAfterHeader(retryAfterS);
  switch (api) {
    case 'graph':
      return graphError(429, 'TooManyRequests', `Too many requests. Retry after ${retryAfterS} seconds.`, ctx, headers);
    case 'rws':
      return rwsODataError(429, `The request was throttled. Retry after ${retryAfterS} seconds.`, headers);
    case 'token':
      return aadstsError(429, 'temporarily_unavailable', 50196, 'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.', ctx, headers);
  }
}

export function error500Response(api: SimApi, ctx: FaultContext): SimResponse {
  switch (api) {
    case 'graph':
      return graphError(500, 'InternalServerError', 'An internal server error occurred. The operation failed.', ctx);
    case 'rws':
      return rwsODataError(500, 'An internal server error occurred. The operation failed.');
    case 'token':
      return aadstsError(500, 'server_error', 50000, 'There was an error issuing a token or an issue with our sign-in service.', ctx);
  }
}

/** 503; Retry-After only when the rule gives one (Microsoft sends it sometimes). */
export function error503Response(api: SimApi, retryAfterS: number | undefined, ctx: FaultContext): SimResponse {
  const headers = retryAfterHeader(retryAfterS);
  switch (api) {
    case 'graph':
      return graphError(503, 'ServiceUnavailable', 'The service is temporarily unavailable. Please try again later.', ctx, headers);
    case 'rws':
      return iisServiceUnavailable(headers);
    case 'token':
      return aadstsError(503, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.', ctx, headers);
  }
}

/** 401 for a token that has expired; only APIs that check tokens answer it. */
export function expiredTokenFaultResponse(api: 'graph' | 'rws', ctx: FaultContext): SimResponse {
  return expiredTokenResponse(api, ctx.nowMs);
}

/**
 * Graph's 401 until the tenant has a service principal for Microsoft's
 * message-trace app; the message is what the user must see (docs/office365-apis.md §1).
 */
export function servicePrincipalResponse(ctx: FaultContext): SimResponse {
  return graphError(
    401,
    'Unauthorized',
    `Service principal-less Authentication failed: the service principal for App ID ${messageTraceAppId} was not found. ` +
      `Create the service principal for this app in the tenant (New-ServicePrincipal -AppId ${messageTraceAppId}) and retry.`,
    ctx,
    { 'www-authenticate': 'Bearer realm=""' },
  );
}

/** 403: RWS without an admin role (exact body of docs/office365-apis.md §2), Graph without the permission. */
export function forbiddenResponse(api: SimApi, ctx: FaultContext): SimResponse {
  switch (api) {
    case 'graph':
      return graphError(
        403,
        'Forbidden',
        "Missing role permissions on the request. API requires one of 'ExchangeMessageTrace.Read.All'. Roles on the request ''.",
        ctx,
      );
    case 'rws':
      return {
        status: 403,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: '{"ErrorCode":"","Message":"No permission to access the report for the organization ."}',
      };
    case 'token':
      return aadstsError(400, 'unauthorized_client', 7000112, 'Application is disabled.', ctx);
  }
}
