import { randomUUID } from 'node:crypto';
import type { SimResponse, TokenAudience } from './simulator.types.ts';

/**
 * The exact error bodies Microsoft's identity platform and the two APIs send
 * when authentication fails (docs/office365-apis.md §1-§3). A collector has to recognise each
 * shape — JSON for Graph and the token endpoint, an IIS HTML page for the
 * Reporting Web Service — so the simulator reproduces the shapes, not just the
 * status codes. No builder here ever receives a secret, a token or an
 * assertion, so none can leak into a body.
 */

const jsonHeaders = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store, no-cache',
  pragma: 'no-cache',
} as const;

/** Entra's error timestamp format: `2026-11-20 10:00:00Z`. */
function aadTimestamp(nowMs: number): string {
  return new Date(nowMs).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

export interface AadstsErrorSpec {
  /** 400 for a bad request, 401 for a client that failed to authenticate. */
  readonly status: 400 | 401;
  /** OAuth 2 error: `invalid_client`, `invalid_request`, `unauthorized_client`, `invalid_resource`... */
  readonly error: string;
  /** The AADSTS number, e.g. 7000215. */
  readonly code: number;
  /** The human part after `AADSTSnnn: `. Must not contain a credential. */
  readonly message: string;
  readonly nowMs: number;
  /** Echo of the client's `client-request-id` when it sent one. */
  readonly correlationId?: string;
}

/**
 * An Entra ID token endpoint error:
 * `{"error","error_description":"AADSTSnnn: ...\r\nTrace ID: ...\r\nCorrelation ID: ...\r\nTimestamp: ...",
 *   "error_codes":[nnn],"timestamp","trace_id","correlation_id","error_uri"}`.
 */
export function aadstsErrorResponse(spec: AadstsErrorSpec): SimResponse {
  const traceId = randomUUID();
  const correlationId = spec.correlationId ?? randomUUID();
  const timestamp = aadTimestamp(spec.nowMs);
  const body = {
    error: spec.error,
    error_description:
      `AADSTS${spec.code}: ${spec.message}\r\nTrace ID: ${traceId}\r\n` +
      `Correlation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [spec.code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${spec.code}`,
  };
  return {
    status: spec.status,
    headers: { ...jsonHeaders, 'x-ms-request-id': traceId },
    body: JSON.stringify(body),
  };
}

/**
 * Graph's 401: `{"error":{"code":"InvalidAuthenticationToken","message":...,"innerError":{...}}}`
 * with the `WWW-Authenticate: Bearer` challenge Graph sends.
 */
export function graphUnauthorizedResponse(message: string, nowMs: number = Date.now()): SimResponse {
  const requestId = randomUUID();
  const body = {
    error: {
      code: 'InvalidAuthenticationToken',
      message,
      innerError: {
        date: new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, ''),
        'request-id': requestId,
        'client-request-id': requestId,
      },
    },
  };
  return {
    status: 401,
    headers: {
      'content-type': 'application/json',
      'request-id': requestId,
      'www-authenticate':
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", ' +
        'client_id="00000003-0000-0000-c000-000000000000"',
    },
    body: JSON.stringify(body),
  };
}

/**
 * The Reporting Web Service's 401: IIS's HTML "Access is denied" page, not
 * JSON — a collector that tries to parse it as JSON must fail clearly.
 */
export function rwsUnauthorizedResponse(): SimResponse {
  const body = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>
<style type="text/css">
<!--
body{margin:0;font-size:.7em;font-family:Verdana, Arial, Helvetica, sans-serif;background:#EEEEEE;}
fieldset{padding:0 15px 10px 15px;}
h1{font-size:2.4em;margin:0;color:#FFF;}
h2{font-size:1.7em;margin:0;color:#CC0000;}
h3{font-size:1.2em;margin:10px 0 0 0;color:#000000;}
#header{width:96%;margin:0 0 0 0;padding:6px 2% 6px 2%;font-family:"trebuchet MS", Verdana, sans-serif;color:#FFF;background-color:#555555;}
#content{margin:0 0 0 2%;position:relative;}
.content-container{background:#FFF;width:96%;margin-top:8px;padding:10px;position:relative;}
-->
</style>
</head>
<body>
<div id="header"><h1>Server Error</h1></div>
<div id="content">
 <div class="content-container"><fieldset>
  <h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2>
  <h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3>
 </fieldset></div>
</div>
</body>
</html>
`;
  return {
    status: 401,
    headers: {
      'content-type': 'text/html',
      'www-authenticate': 'Bearer, Basic Realm=""',
      'x-powered-by': 'ASP.NET',
    },
    body,
  };
}

/**
 * What each API answers for a token past its lifetime. The job machine's
 * "401 while paging → re-authenticate once" rule is tested against exactly
 * this, and the fault injector serves it on demand.
 */
export function expiredTokenResponse(audience: TokenAudience, nowMs: number = Date.now()): SimResponse {
  return audience === 'graph'
    ? graphUnauthorizedResponse('Lifetime validation failed, the token is expired.', nowMs)
    : rwsUnauthorizedResponse();
}
