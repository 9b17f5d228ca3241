/**
 * An Office 365 API stand-in at the HTTP layer (undici MockAgent, no
 * network): each `serve` answers the next GET with a status, a body (JSON
 * when given an object, with the dialect's own content type) and headers,
 * and records the request it answered — path and headers — in `seen`.
 */
import { type Interceptable, MockAgent } from 'undici';

/** What a reply returns (undici does not export the name): `.delay()`, `.times()`, `.persist()`. */
type MockScope = ReturnType<ReturnType<Interceptable['intercept']>['reply']>;

export interface SeenRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
}

export interface MockApiServer {
  readonly agent: MockAgent;
  readonly seen: SeenRequest[];
  serve(statusCode: number, body: string | object, headers?: Record<string, string>): MockScope;
  close(): Promise<void>;
}

export function createMockApiServer(origin: string, jsonContentType: string): MockApiServer {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const seen: SeenRequest[] = [];
  return {
    agent,
    seen,
    serve(statusCode, body, headers = {}) {
      const data = typeof body === 'string' ? body : JSON.stringify(body);
      const contentType = typeof body === 'string' ? {} : { 'content-type': jsonContentType };
      return agent
        .get(origin)
        .intercept({ path: () => true, method: 'GET' })
        .reply((opts) => {
          seen.push({ path: opts.path, headers: opts.headers as Record<string, string> });
          return { statusCode, data, responseOptions: { headers: { ...contentType, ...headers } } };
        });
    },
    close: () => agent.close(),
  };
}
