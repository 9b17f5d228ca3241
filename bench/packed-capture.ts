/**
 * The baseline's input, packed into one buffer between timed runs.
 *
 * Why (issue 6, round 3): the baseline publishes 200,000 pre-serialised
 * messages held in memory — about a million heap objects (payload strings,
 * header objects, their maps and arrays). When they stayed reachable during
 * the pipeline's runs, every major GC of the pipeline marked them, and on the
 * bench's 2 cores that marking ran beside nats-server: measured, the
 * pipeline's GC time doubled (3.3 s → 1.6 s per 200k-row run once they were
 * gone) and its wall time grew by 15–25 %. msgtrace in production holds at
 * most two pages. So between runs the messages live as one Buffer (a single
 * off-heap allocation V8 never traces), and the baseline unpacks them,
 * untimed, just before its own run.
 */
import type { JetStreamPublishOptions } from '@nats-io/jetstream';
import { MsgHdrsImpl } from '@nats-io/transport-node';

export interface CapturedPublish {
  readonly subject: string;
  readonly data: string;
  readonly options: Partial<JetStreamPublishOptions>;
}

type PackedMessage = [subject: string, data: string, headers: Array<[string, string[]]> | null, timeout: number | null];

export function packCapture(messages: readonly CapturedPublish[]): Buffer {
  const rows = messages.map((message): PackedMessage => {
    const { headers, timeout, ...rest } = message.options;
    if (Object.keys(rest).length > 0) throw new Error(`packCapture: publish option(s) ${Object.keys(rest).join(', ')} cannot be packed`);
    if (headers !== undefined && !(headers instanceof MsgHdrsImpl)) throw new Error('packCapture: headers must be the client\'s MsgHdrsImpl');
    if (headers !== undefined && (headers.code !== 0 || headers.description !== '')) throw new Error('packCapture: status headers cannot be packed');
    return [message.subject, message.data, headers === undefined ? null : [...headers.headers], timeout ?? null];
  });
  return Buffer.from(JSON.stringify(rows));
}

/** The messages `packCapture` packed: the same subjects, payloads, header maps and timeouts, as fresh objects. */
export function unpackCapture(packed: Buffer): CapturedPublish[] {
  const rows = JSON.parse(packed.toString('utf8')) as PackedMessage[];
  return rows.map(([subject, data, entries, timeout]) => {
    const options: Partial<JetStreamPublishOptions> = {};
    if (entries !== null) {
      const headers = new MsgHdrsImpl();
      // Straight into the map, as the publisher writes them (see serialise in jetstream-publisher.ts).
      for (const [name, values] of entries) headers.headers.set(name, values);
      options.headers = headers;
    }
    if (timeout !== null) options.timeout = timeout;
    return { subject, data, options };
  });
}
