/**
 * The event contract, docs/event.schema.json, held against real published
 * events: `msgtrace collect` against the simulator over HTTPS into a real
 * nats-server, for an RWS input and a Graph input (each with metadata and a
 * pipeline, so user fields are present; the Graph one also a `__` metadata
 * field, so a user `Msgtrace-*` header) and a Graph beta input without
 * expressions (the other road through the stream). Every stored message,
 * read back from JetStream with its headers, must validate; so must the
 * dead letter and what `msgtrace events` prints. Then one broken copy per
 * rule must NOT validate, so the schema is shown to say something.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { readOnlyInternalFields } from '../streams/field-sandbox.ts';
import { headerNameOf } from '../streams/wire-message.ts';
import { runMsgtraceCli, storedCount, type CliRun } from './support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { fetchTruthKeys, graphInput, setSimulatorFaults, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const schemaFile = new URL('../docs/event.schema.json', import.meta.url);
const schemaId = 'urn:msgtrace:event-contract:1';

const hourMs = 3_600_000;
/** Twenty minutes of an hour 30 h ago: older than the simulator's 24 h late-row horizon, so the truth is settled. */
const windowStartMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const window = { startMs: windowStartMs, endMs: windowStartMs + 20 * 60_000 };
const windowLabel = `${new Date(window.startMs).toISOString()}/${new Date(window.endMs).toISOString()}`;

/** A stored message as the schema describes it (one `msgtrace events` line). */
interface EventMessage {
  subject: string;
  headers: Record<string, string>;
  event: Record<string, unknown>;
}

interface DeadLetterMessage {
  subject: string;
  headers: Record<string, string>;
  letter: Record<string, unknown>;
}

type Dialect = 'graph' | 'rws';

interface ContractInput {
  readonly id: string;
  readonly dialect: Dialect;
  /** The simulator's rewrite of this input's pages (an oversize row, a row too big for NATS). */
  readonly faults: unknown[];
  /** Extra rows the fault adds that become stored (broken) events; the truth does not list them. */
  readonly extraStored: number;
}

const inputs = {
  // RWS verbose envelope: `/Date(ms)/` dates and OData `__metadata` on every row, both of which must not reach the contract as sent.
  rws: { id: 'contract-rws', dialect: 'rws', faults: [{ kind: 'hugeRow', api: 'rws', nth: [1], bytes: 60_000 }], extraStored: 1 },
  // Page 1 gains a 2 MB row: over max_payload, so it goes to the dead letters.
  graph: { id: 'contract-graph', dialect: 'graph', faults: [{ kind: 'hugeRow', api: 'graph', nth: [1] }], extraStored: 0 },
  // No metadata, no pipeline: the road without the expression child; its oversize row is broken there.
  plain: { id: 'contract-plain', dialect: 'graph', faults: [{ kind: 'hugeRow', api: 'graph', nth: [2], bytes: 60_000 }], extraStored: 1 },
} as const satisfies Record<string, ContractInput>;

/** The user's `__` metadata field on the Graph input, and the header it must travel as. */
const routeField = '__route';
const routeHeader = headerNameOf(routeField);

/** Reads every message stored on `subject` (an ephemeral ordered consumer), headers as name → its one value. */
async function readStored(nc: NatsConnection, subject: string): Promise<Array<{ subject: string; headers: Record<string, string>; body: Record<string, unknown> }>> {
  const expected = await storedCount(nc, subject);
  const read: Array<{ subject: string; headers: Record<string, string>; body: Record<string, unknown> }> = [];
  if (expected === 0) return read;
  const stream = await (await jetstreamManager(nc)).streams.find(subject);
  // A string (not an array) keeps this on filter_subject, which nats-server 2.9 (Debian) supports.
  const consumer = await jetstream(nc).consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  for await (const message of await consumer.consume()) {
    const headers: Record<string, string> = {};
    for (const [name, values] of message.headers ?? []) {
      // The schema maps a name to one string: msgtrace sets each header once.
      assert.equal(values.length, 1, `${name} on ${subject} has ${values.length} values`);
      headers[name] = values[0]!;
    }
    read.push({ subject: message.subject, headers, body: message.json<Record<string, unknown>>() });
    if (read.length === expected) break;
  }
  return read;
}

/** The record part of a key as record-key.ts documents it, recomputed here from the payload. */
function expectedMsgId(inputId: string, dialect: Dialect, event: Record<string, unknown>): string {
  const [trace, recipient, status] = dialect === 'graph' ? ['id', 'recipientAddress', 'status'] : ['MessageTraceId', 'RecipientAddress', 'Status'];
  return `${inputId}|${[event[trace!], event[recipient!], event[status!]].map((v) => String(v ?? '').toLowerCase()).join('|')}`;
}

const clone = <T>(value: T): T => structuredClone(value);

/** The parts of the schema the test reads besides validating with it. */
interface ContractSchema {
  readonly $defs: {
    readonly graphRow: { readonly required: string[] };
    readonly eventHeaders: { readonly required: string[]; readonly properties: Record<string, unknown> };
  };
}

describe('the event contract (docs/event.schema.json) against real published events', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let admin: NatsConnection;
  let dir: string;
  let viewerConfig: string;
  let schema: ContractSchema;
  let validateEvent: ValidateFunction;
  let validateDeadLetter: ValidateFunction;
  const runs: Record<string, CliRun> = {};
  const stored: Record<string, EventMessage[]> = {};
  let deadLetters: DeadLetterMessage[] = [];

  const explain = (validate: ValidateFunction) => JSON.stringify(validate.errors?.slice(0, 5));

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ seed: 14, quota: { enabled: false } })]);
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
    schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as ContractSchema;
    // Union types (`["string", "null"]`) are how the APIs' nullable fields are written; the rest is ajv's strict mode.
    const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true });
    ajv.addSchema(schema);
    validateEvent = ajv.getSchema(schemaId)!;
    validateDeadLetter = ajv.getSchema(`${schemaId}#/$defs/deadLetterMessage`)!;

    dir = await mkdtemp(join(tmpdir(), 'msgtrace-contract-'));
    const d = sim.describe();
    const config = {
      nats: { servers: nats.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
      // graphInput: the registered app's sign-in to the simulator; the RWS input points its url at RWS (its resource follows).
      inputs: [
        graphInput(sim, inputs.rws.id, {
          url: `${d.rwsUrl}?$format=json`,
          pageSize: 60,
          metadata: [{ name: 'collector', value: "'contract-test'" }],
          pipeline: 'rws-tag',
        }),
        graphInput(sim, inputs.graph.id, {
          pageSize: 60,
          metadata: [
            { name: 'collector', value: "'contract-test'" },
            { name: routeField, value: "'soc-' + status" },
          ],
          pipeline: 'graph-tag',
        }),
        graphInput(sim, inputs.plain.id, { url: d.graphBetaUrl, pageSize: 60 }),
      ],
      pipelines: [
        { id: 'rws-tag', functions: [{ id: 'eval', conf: { add: [{ name: 'region', value: "'eu-west'" }, { name: 'senderDomain', value: "SenderAddress.split('@')[1]" }] } }] },
        { id: 'graph-tag', functions: [{ id: 'eval', conf: { add: [{ name: 'region', value: "'eu-west'" }, { name: 'senderDomain', value: "senderAddress.split('@')[1]" }] } }] },
      ],
    };
    const configFile = join(dir, 'msgtrace.json');
    await writeFile(configFile, JSON.stringify(config));
    viewerConfig = join(dir, 'viewer.json');
    await writeFile(viewerConfig, JSON.stringify({ nats: { servers: nats.url, user: natsUsers.viewer.user, password: natsUsers.viewer.pass } }));

    // One after the other: a fault rule counts the requests of its API since the plan was set.
    for (const input of Object.values(inputs)) {
      await setSimulatorFaults(sim, { rules: [...input.faults], quota: { enabled: false } });
      runs[input.id] = await runMsgtraceCli(
        ['collect', '--config', configFile, '--input', input.id, '--start', String(window.startMs / 1000), '--end', String(window.endMs / 1000)],
        { NODE_EXTRA_CA_CERTS: sim.caFile },
      );
      stored[input.id] = (await readStored(admin, `msgtrace.events.${input.id}`)).map(({ subject, headers, body }) => ({ subject, headers, event: body }));
    }
    deadLetters = (await readStored(admin, `msgtrace.deadletter.${inputs.graph.id}`)).map(({ subject, headers, body }) => ({ subject, headers, letter: body }));
  });

  after(async () => {
    await admin?.close();
    await Promise.all([nats?.close(), sim?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every stored event of both dialects validates, and they are all the tenant holds', async (t) => {
    const counts: Record<Dialect, number> = { graph: 0, rws: 0 };
    const perInput: string[] = [];
    for (const input of Object.values(inputs)) {
      const run = runs[input.id]!;
      assert.equal(run.code, 0, run.stderr);
      const messages = stored[input.id]!;
      const truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: input.id });
      assert.ok(truth.length > 100, `a window of real records, got ${truth.length}`);
      assert.equal(messages.length, truth.length + input.extraStored, `${input.id}: the tenant's records plus the stored oversize row`);
      const ids = new Set(messages.map((m) => m.headers['Nats-Msg-Id']));
      for (const key of truth) assert.ok(ids.has(key), `${input.id}: ${key} was stored`);
      for (const message of messages) {
        assert.ok(validateEvent(message), `${input.id} ${message.headers['Nats-Msg-Id']}: ${explain(validateEvent)}`);
        counts[input.dialect] += 1;
      }
      perInput.push(`${input.id} ${messages.length}`);
    }
    t.diagnostic(`validated ${counts.rws} RWS events and ${counts.graph} Graph events (${perInput.join(', ')})`);
  });

  it('what the schema cannot say holds too: subject, the Nats-Msg-Id formula, input id, source, window, _time, one final event per window', () => {
    const d = sim.describe();
    const sources = { [inputs.rws.id]: d.rwsUrl, [inputs.graph.id]: d.graphUrl, [inputs.plain.id]: d.graphBetaUrl };
    for (const input of Object.values(inputs)) {
      const messages = stored[input.id]!;
      const jobIds = new Set<string>();
      for (const { subject, headers, event } of messages) {
        assert.equal(subject, `msgtrace.events.${input.id}`);
        assert.equal(headers['Nats-Msg-Id'], expectedMsgId(input.id, input.dialect, event));
        assert.equal(headers['Msgtrace-Input-Id'], `office365_msg_trace:${input.id}`);
        assert.equal(headers['Msgtrace-Source'], sources[input.id], 'the url without its query');
        assert.equal(headers['Msgtrace-Window'], windowLabel);
        jobIds.add(headers['Msgtrace-Job-Id']!);
        const time = event._time as number;
        assert.ok(time * 1000 >= window.startMs && time * 1000 < window.endMs, `_time ${time} is in the window`);
        const received = event[input.dialect === 'graph' ? 'receivedDateTime' : 'Received'] as string;
        assert.ok(Math.abs(Date.parse(received) / 1000 - time) < 1e-6, `_time ${time} is ${received} in seconds`);
      }
      assert.equal(jobIds.size, 1, 'one job');
      assert.match([...jobIds][0]!, new RegExp(`^adhoc-${input.id}-`));
      const finals = messages.filter((m) => m.headers['Msgtrace-Final'] === 'true');
      assert.equal(finals.length, 1, `${input.id}: exactly one final event`);
      const lastPage = Math.max(...messages.map((m) => Number(m.headers['Msgtrace-Page'])));
      assert.ok(lastPage >= 3, `${input.id}: several pages (${lastPage})`);
      assert.equal(finals[0]!.headers['Msgtrace-Page'], String(lastPage), 'the final event is on the last page');
    }
  });

  it('user fields: metadata and pipeline fields are in the payload, a `__` metadata field is a header of its own; the plain input has none', () => {
    for (const input of [inputs.rws, inputs.graph]) {
      for (const { headers, event } of stored[input.id]!) {
        if (headers['Msgtrace-Is-Broken'] === 'true') continue;
        assert.equal(event.collector, 'contract-test');
        assert.equal(event.region, 'eu-west');
        assert.equal(event.senderDomain, String(event[input.dialect === 'graph' ? 'senderAddress' : 'SenderAddress']).split('@')[1]);
        if (input === inputs.graph) assert.equal(headers[routeHeader], `soc-${String(event.status)}`);
        else assert.equal(headers[routeHeader], undefined);
      }
    }
    const graphRow = new Set([...schema.$defs.graphRow.required, '@odata.type', '_time']);
    for (const { headers, event } of stored[inputs.plain.id]!) {
      for (const key of Object.keys(event)) assert.ok(graphRow.has(key), `the plain input's payload holds only the row and _time, not ${key}`);
      if (headers['Msgtrace-Is-Broken'] === 'false') assert.equal(event['@odata.type'], '#microsoft.graph.exchangeMessageTrace', 'beta rows keep their @odata.type');
    }
  });

  it('every Msgtrace-* header seen is documented, every required header was seen, and the documented ones are the internal fields', () => {
    const documented = new Set(Object.keys(schema.$defs.eventHeaders.properties));
    const required = schema.$defs.eventHeaders.required;
    // Only the internal fields the code names travel as documented headers; a user's `__` metadata field as its own.
    assert.deepEqual([...documented].filter((h) => h.startsWith('Msgtrace-')).sort(), readOnlyInternalFields.map(headerNameOf).sort());
    const declaredByUser = new Set([routeHeader]);
    const seenByUser = new Set<string>();
    for (const input of Object.values(inputs)) {
      const seen = new Set(stored[input.id]!.flatMap((m) => Object.keys(m.headers)));
      for (const name of seen) {
        if (declaredByUser.has(name)) seenByUser.add(name);
        else assert.ok(documented.has(name), `${input.id}: header ${name} is documented in the schema`);
      }
      for (const name of required) assert.ok(seen.has(name), `${input.id}: required header ${name} was sent`);
    }
    assert.deepEqual([...seenByUser], [routeHeader], 'the __route metadata field travelled as its header');
    const allSeen = new Set(Object.values(stored).flatMap((messages) => messages.flatMap((m) => Object.keys(m.headers))));
    assert.ok(allSeen.has('Msgtrace-Broken-Reason'), 'the optional Msgtrace-Broken-Reason was seen on the oversize events');
  });

  it('oversize rows are stored whole and broken on both roads; the row too big for NATS is a dead letter that validates', () => {
    for (const input of [inputs.rws, inputs.plain]) {
      const broken = stored[input.id]!.filter((m) => m.headers['Msgtrace-Is-Broken'] === 'true');
      assert.equal(broken.length, 1, `${input.id}: the oversize row`);
      assert.equal(broken[0]!.headers['Msgtrace-Broken-Reason'], 'oversize');
      assert.equal((broken[0]!.event.subject as string).length, 60_000, 'kept whole');
    }
    assert.equal(deadLetters.length, 1);
    const [dead] = deadLetters;
    assert.ok(validateDeadLetter(dead), explain(validateDeadLetter));
    assert.equal(dead!.headers['Nats-Msg-Id'], dead!.letter.msgId);
    assert.match(String(dead!.letter.reason), /max_payload/);
    assert.equal(dead!.letter.jobId, stored[inputs.graph.id]![0]!.headers['Msgtrace-Job-Id']);
    assert.equal(validateEvent(dead), false, 'a dead letter is not an event');
  });

  it('`msgtrace events --from-start` prints lines that are instances of the schema, the same messages read back above', async () => {
    const expected = stored[inputs.rws.id]!;
    const run = await runMsgtraceCli(['events', '--config', viewerConfig, '--from-start', '--subject', `msgtrace.events.${inputs.rws.id}`, '--count', String(expected.length)]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as EventMessage);
    assert.equal(lines.length, expected.length);
    for (const line of lines) assert.ok(validateEvent(line), explain(validateEvent));
    assert.deepEqual(lines, expected);
  });

  it('the events stream keeps what the contract says: 7 days, no byte limit, a 2-hour duplicate window', async () => {
    const info = await (await jetstreamManager(admin)).streams.info('MSGTRACE_EVENTS');
    assert.equal(info.config.max_age, nanos(7 * 24 * hourMs));
    assert.equal(info.config.max_bytes, -1);
    assert.equal(info.config.duplicate_window, nanos(2 * hourMs));
    const letters = await (await jetstreamManager(admin)).streams.info('MSGTRACE_DEADLETTER');
    assert.equal(letters.config.max_age, nanos(30 * 24 * hourMs));
  });

  it('the schema is not vacuous: one violation of each rule is refused', () => {
    const pick = (input: ContractInput, broken: boolean) => stored[input.id]!.find((m) => (m.headers['Msgtrace-Is-Broken'] === 'true') === broken)!;
    const graph = pick(inputs.graph, false);
    const rws = pick(inputs.rws, false);
    const broken = pick(inputs.rws, true);
    for (const base of [graph, rws, broken]) assert.ok(validateEvent(base), explain(validateEvent));
    // A broken event promises only `_time`: stripped to it, it still validates (the relaxation is scoped to broken events).
    assert.ok(validateEvent({ ...clone(broken), event: { _time: broken.event._time } }), explain(validateEvent));

    const refused: Array<[string, unknown]> = [];
    const mutate = (why: string, base: EventMessage, change: (m: EventMessage) => void) => {
      const copy = clone(base);
      change(copy);
      refused.push([why, copy]);
    };
    // Payload.
    mutate('payload without _time', graph, (m) => delete m.event._time);
    mutate('a broken payload without _time', broken, (m) => delete m.event._time);
    mutate('_time as an ISO string', graph, (m) => (m.event._time = new Date().toISOString()));
    mutate('_time in milliseconds', rws, (m) => (m.event._time = Date.now()));
    mutate('an internal __ field in the payload', graph, (m) => (m.event.__inputId = m.headers['Msgtrace-Input-Id']));
    mutate('a Graph event without recipientAddress', graph, (m) => delete m.event.recipientAddress);
    mutate('a Graph event whose size is a string', graph, (m) => (m.event.size = String(m.event.size)));
    mutate('an RWS event without MessageTraceId', rws, (m) => delete m.event.MessageTraceId);
    mutate('an RWS event without Received', rws, (m) => delete m.event.Received);
    mutate("a Graph row under an RWS source (the url decides the dialect)", graph, (m) => (m.headers['Msgtrace-Source'] = rws.headers['Msgtrace-Source']!));
    // Headers.
    for (const name of schema.$defs.eventHeaders.required) mutate(`no ${name} header`, graph, (m) => delete m.headers[name]);
    mutate('Nats-Msg-Id without the input part', graph, (m) => (m.headers['Nats-Msg-Id'] = m.headers['Nats-Msg-Id']!.slice(m.headers['Nats-Msg-Id']!.indexOf('|') + 1)));
    mutate('Nats-Msg-Id not lowercased', rws, (m) => (m.headers['Nats-Msg-Id'] = `${inputs.rws.id}|${m.event.MessageTraceId}|${m.event.RecipientAddress}|${m.event.Status}`));
    mutate('Msgtrace-Input-Id without office365_msg_trace:', graph, (m) => (m.headers['Msgtrace-Input-Id'] = inputs.graph.id));
    mutate('Msgtrace-Source with its query', rws, (m) => (m.headers['Msgtrace-Source'] = `${m.headers['Msgtrace-Source']}?$format=json`));
    mutate('Msgtrace-Source of neither API', graph, (m) => (m.headers['Msgtrace-Source'] = 'https://example.com/api/messages'));
    mutate('Msgtrace-Window not an interval', graph, (m) => (m.headers['Msgtrace-Window'] = new Date().toISOString()));
    mutate('Msgtrace-Page 0', graph, (m) => (m.headers['Msgtrace-Page'] = '0'));
    mutate('Msgtrace-Final yes', graph, (m) => (m.headers['Msgtrace-Final'] = 'yes'));
    mutate('Msgtrace-Is-Broken true without a reason', graph, (m) => (m.headers['Msgtrace-Is-Broken'] = 'true'));
    mutate('a Broken-Reason on an event that is not broken', graph, (m) => (m.headers['Msgtrace-Broken-Reason'] = 'oversize'));
    mutate('an unknown Broken-Reason', broken, (m) => (m.headers['Msgtrace-Broken-Reason'] = 'truncated'));
    mutate('a header msgtrace never sends', graph, (m) => (m.headers['X-Trace'] = '1'));
    // Envelope.
    mutate('no subject', graph, (m) => delete (m as Partial<EventMessage>).subject);
    mutate('a wildcard subject', graph, (m) => (m.subject = 'msgtrace.events.>'));
    mutate('the payload under another name', graph, (m) => {
      (m as unknown as Record<string, unknown>).payload = m.event;
      delete (m as Partial<EventMessage>).event;
    });
    for (const [why, instance] of refused) assert.equal(validateEvent(instance), false, `refused: ${why}`);

    const dead = deadLetters[0]!;
    const refusedLetters: Array<[string, DeadLetterMessage]> = [];
    const mutateLetter = (why: string, change: (m: DeadLetterMessage) => void) => {
      const copy = clone(dead);
      change(copy);
      refusedLetters.push([why, copy]);
    };
    mutateLetter('a dead letter without its reason', (m) => delete m.letter.reason);
    mutateLetter('a dead letter holding the whole row', (m) => (m.letter.row = { subject: 'x' }));
    mutateLetter('a dead letter whose record holds a non-identifying field', (m) => ((m.letter.record as Record<string, unknown>).subject = 'x'));
    mutateLetter('a dead letter whose record holds an uncut string', (m) => ((m.letter.record as Record<string, unknown>).recipientAddress = 'x'.repeat(600)));
    mutateLetter('a dead letter without Nats-Msg-Id', (m) => delete m.headers['Nats-Msg-Id']);
    mutateLetter('a dead letter on an events subject', (m) => (m.subject = `msgtrace.events.${inputs.graph.id}`));
    for (const [why, instance] of refusedLetters) assert.equal(validateDeadLetter(instance), false, `refused: ${why}`);
  });
});
