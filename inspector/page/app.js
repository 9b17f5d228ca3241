// The inspector's page: one server-sent event stream from the inspect
// process (a snapshot, then each change), no NATS credentials in the browser.
import { drawChart, highlightState, layoutChart, nodeForState } from './chart.js';

const finalStates = new Set(['done', 'timedOut', 'failed', 'cancelled']);
const state = {
  jobs: new Map(),
  inputs: new Map(),
  charts: null,
  layouts: { job: null, scheduler: null },
  svgs: { job: null, scheduler: null },
  health: null,
  /** serverNow − browserNow, from the last snapshot or health event. */
  clockOffsetMs: 0,
  selectedJobId: null,
  /** The user clicked a job: stop following the newest one. */
  pinnedJob: false,
  selectedInputId: null,
  pinnedInput: false,
};

const $ = (selector) => document.querySelector(selector);
const now = () => Date.now() + state.clockOffsetMs;

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');
function clock(ms, withMs = false) {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${withMs ? `.${pad(d.getUTCMilliseconds(), 3)}` : ''}Z`;
}
function dateTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace(/:\d\d\.\d{3}Z$/, 'Z');
}
function windowText(window) {
  const start = dateTime(window.startMs);
  const end = dateTime(window.endMs);
  return start.slice(0, 10) === end.slice(0, 10) ? `${start}–${end.slice(11)}` : `${start}–${end}`;
}
function duration(ms) {
  const negative = ms < 0;
  const s = Math.abs(ms) / 1000;
  let text;
  if (s < 10) text = `${s.toFixed(1)} s`;
  else if (s < 60) text = `${Math.round(s)} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} m ${pad(Math.round(s % 60))} s`;
  else text = `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} m`;
  return negative ? `−${text}` : text;
}

function toneOf(job) {
  if (job.lost) return 'lost';
  if (job.state === 'retryWait') return 'retry';
  if (job.state === 'done') return 'done';
  if (finalStates.has(job.state)) return 'fail';
  return 'active';
}

function sortedJobs() {
  return [...state.jobs.values()].sort((a, b) => {
    const running = Number(finalStates.has(a.state)) - Number(finalStates.has(b.state));
    return running !== 0 ? running : b.startedAtMs - a.startedAtMs || a.id.localeCompare(b.id);
  });
}

/** Follows the newest job (a running one first) until the user picks one. */
function autoSelect() {
  if (!state.pinnedJob || !state.jobs.has(state.selectedJobId)) {
    const newest = [...state.jobs.values()].sort((a, b) => b.startedAtMs - a.startedAtMs)[0];
    const running = sortedJobs().find((job) => !finalStates.has(job.state));
    const pick = running ?? newest ?? null;
    state.selectedJobId = pick?.id ?? null;
  }
  if (!state.pinnedInput || !state.inputs.has(state.selectedInputId)) {
    const job = state.jobs.get(state.selectedJobId);
    state.selectedInputId = job?.inputId ?? [...state.inputs.keys()].sort()[0] ?? null;
  }
}

// ---- Tables -----------------------------------------------------------------

function renderInputs() {
  const body = $('#inputs tbody');
  const inputs = [...state.inputs.values()].sort((a, b) => a.inputId.localeCompare(b.inputId));
  $('#inputs-empty').hidden = inputs.length > 0;
  body.replaceChildren(
    ...inputs.map((input) =>
      h(
        'tr',
        { class: input.inputId === state.selectedInputId ? 'selected' : '', dataset: { inputId: input.inputId }, onclick: () => selectInput(input.inputId) },
        h('td', {}, input.inputId),
        h('td', { class: 'scheduler-state' }, input.scheduler.node === null ? 'unknown' : input.scheduler.node.split('.')[0]),
        h('td', { class: 'next-run', dataset: { at: input.nextRunAtMs ?? '' } }, input.nextRunAtMs === null ? '—' : clock(input.nextRunAtMs)),
        h('td', {}, input.completedUntilMs === null ? '—' : dateTime(input.completedUntilMs)),
        h('td', { class: 'lag num', dataset: { from: input.completedUntilMs ?? '' } }, input.completedUntilMs === null ? '—' : duration(now() - input.completedUntilMs)),
        h('td', {}, input.scheduler.jobId ?? (input.inProgress ? `${input.inProgress.jobId} (checkpoint at page ${input.inProgress.page})` : '—')),
      ),
    ),
  );
  tickCountdowns();
}

function cancelButton(job) {
  if (!state.health?.cancel || finalStates.has(job.state)) return null;
  return h('button', {
    class: 'cancel',
    title: 'Ask the process running this job to cancel it (the operator\'s cancel request)',
    onclick: async (event) => {
      event.stopPropagation();
      if (!window.confirm(`Cancel job ${job.id}? The process running it stops after the current page.`)) return;
      const response = await fetch(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, { method: 'POST', headers: { 'x-msgtrace-inspector': 'cancel' } });
      const result = await response.json().catch(() => ({ message: `HTTP ${response.status}` }));
      const notice = $('#cancel-result');
      notice.textContent = result.message ?? JSON.stringify(result);
      notice.hidden = false;
    },
  }, 'Cancel');
}

function renderJobs() {
  const body = $('#jobs tbody');
  const jobs = sortedJobs().slice(0, 60);
  $('#jobs-empty').hidden = jobs.length > 0;
  body.replaceChildren(
    ...jobs.map((job) =>
      h(
        'tr',
        { class: job.id === state.selectedJobId ? 'selected' : '', dataset: { jobId: job.id, state: job.state }, onclick: () => selectJob(job.id) },
        h('td', { class: 'job-id' }, job.id),
        h('td', {}, job.inputId),
        h('td', {}, job.kind),
        h('td', {}, h('span', { class: `badge ${finalStates.has(job.state) ? job.state : job.state === 'retryWait' ? 'retryWait' : 'running'}` }, job.state), job.lost ? h('span', { class: 'badge lost', title: 'no heartbeat for longer than keepAliveTime × maxMissedKeepAlives' }, 'lost') : null),
        h('td', {}, windowText(job.window)),
        h('td', { class: 'num' }, job.counts.pages),
        h('td', { class: 'num' }, job.counts.events),
        h('td', { class: 'num' }, job.counts.retries),
        h('td', {}, job.workerId ?? '—'),
        h('td', { class: 'heartbeat', dataset: { at: job.heartbeatAtMs ?? '' } }, job.heartbeatAtMs ? `${duration(now() - job.heartbeatAtMs)} ago` : '—'),
        h('td', { class: 'error', title: job.lastError ?? undefined }, job.lastError ?? ''),
        h('td', { class: 'next-retry', dataset: { at: job.state === 'retryWait' && job.nextRetryAtMs ? job.nextRetryAtMs : '' } }, ''),
        h('td', {}, cancelButton(job)),
      ),
    ),
  );
  tickCountdowns();
}

// ---- The selected job and its chart ------------------------------------------

function renderJob() {
  const job = state.jobs.get(state.selectedJobId) ?? null;
  $('#job-title').textContent = job ? job.id : '—';
  const chartBox = $('#job-chart');
  chartBox.dataset.jobId = job?.id ?? '';
  if (state.svgs.job) {
    const node = job ? nodeForState(state.charts.job, job.state) : null;
    highlightState(state.svgs.job, state.charts.job, node, job ? toneOf(job) : 'active');
    chartBox.dataset.state = job?.state ?? '';
  }
  if (!job) {
    $('#job-summary').textContent = 'No job selected.';
    $('#retry-banner').hidden = true;
    $('#transitions tbody').replaceChildren();
    return;
  }
  const parts = [
    `${job.kind} job of ${job.inputId}`,
    `window ${windowText(job.window)}`,
    `page ${job.page}`,
    `${job.counts.pages} pages, ${job.counts.events} events, ${job.counts.duplicates} duplicates, ${job.counts.retries} retries`,
  ];
  if (job.workerId) parts.push(`worker ${job.workerId}`);
  if (job.heartbeatAtMs) parts.push(`last heartbeat ${clock(job.heartbeatAtMs)}`);
  if (job.lost) parts.push('LOST: no heartbeat for longer than keepAliveTime × maxMissedKeepAlives');
  $('#job-summary').textContent = parts.join(' · ');

  const banner = $('#retry-banner');
  if (job.state === 'retryWait') {
    banner.hidden = false;
    banner.replaceChildren(
      h('span', { class: 'reason' }, `Waiting to retry: ${job.lastError ?? '(no reason recorded)'}`),
      job.nextRetryAtMs ? h('span', {}, ' — next try in ', h('span', { class: 'countdown', dataset: { at: job.nextRetryAtMs } }, ''), ` (at ${clock(job.nextRetryAtMs, true)})`) : null,
    );
  } else {
    banner.hidden = true;
    banner.replaceChildren();
  }

  const transitions = job.transitions ?? [];
  $('#transitions tbody').replaceChildren(
    ...transitions.map((t, i) =>
      h(
        'tr',
        { dataset: { state: t.state } },
        h('td', { title: new Date(t.atMs).toISOString() }, clock(t.atMs, true)),
        h('td', {}, t.state),
        h('td', { class: 'num' }, i === 0 ? '' : `+${duration(t.atMs - transitions[i - 1].atMs)}`),
        h('td', { class: 'error' }, t.reason ?? ''),
      ),
    ),
  );
  tickCountdowns();
}

function renderScheduler() {
  const input = state.inputs.get(state.selectedInputId) ?? null;
  $('#scheduler-title').textContent = input ? input.inputId : '—';
  $('#scheduler-summary').textContent = input ? input.scheduler.text : 'No input selected.';
  const box = $('#scheduler-chart');
  box.dataset.inputId = input?.inputId ?? '';
  box.dataset.state = input?.scheduler.node ?? '';
  if (state.svgs.scheduler) highlightState(state.svgs.scheduler, state.charts.scheduler, input?.scheduler.node ?? null, 'active');
}

function renderAll() {
  autoSelect();
  renderInputs();
  renderJobs();
  renderJob();
  renderScheduler();
}

function selectJob(id) {
  state.selectedJobId = id;
  state.pinnedJob = true;
  const job = state.jobs.get(id);
  if (job && !state.pinnedInput) state.selectedInputId = job.inputId;
  renderAll();
}

function selectInput(id) {
  state.selectedInputId = id;
  state.pinnedInput = true;
  renderAll();
}

// ---- Time-driven text -------------------------------------------------------

function tickCountdowns() {
  const t = now();
  for (const cell of document.querySelectorAll('[data-at].next-retry, .countdown[data-at]')) {
    const at = Number(cell.dataset.at);
    cell.textContent = cell.dataset.at === '' ? '' : at > t ? duration(at - t) : 'now';
  }
  for (const cell of document.querySelectorAll('td.next-run[data-at]')) {
    const at = Number(cell.dataset.at);
    if (cell.dataset.at !== '') cell.textContent = `${clock(at)} (${at > t ? `in ${duration(at - t)}` : `due ${duration(t - at)} ago`})`;
  }
  for (const cell of document.querySelectorAll('td.lag[data-from]')) if (cell.dataset.from !== '') cell.textContent = duration(t - Number(cell.dataset.from));
  for (const cell of document.querySelectorAll('td.heartbeat[data-at]')) if (cell.dataset.at !== '') cell.textContent = `${duration(t - Number(cell.dataset.at))} ago`;
  $('#server-clock').textContent = clock(t);
}

function renderHealth() {
  const live = $('#live-status');
  const nats = $('#nats-status');
  const health = state.health;
  if (!health) return;
  nats.textContent = `NATS ${health.nats}${health.user ? ` as ${health.user}` : ''}`;
  nats.className = `pill ${health.nats === 'connected' ? 'ok' : 'bad'}`;
  nats.title = health.sources.map((s) => `${s.name}: ${s.state}${s.detail ? ` (${s.detail})` : ''}`).join('\n');
  live.title = nats.title;
}

// ---- The event stream -------------------------------------------------------

async function prepareCharts(charts) {
  if (state.charts !== null) return;
  state.charts = charts;
  const [jobLayout, schedulerLayout] = await Promise.all([layoutChart(charts.job, window.ELK), layoutChart(charts.scheduler, window.ELK)]);
  state.layouts = { job: jobLayout, scheduler: schedulerLayout };
  state.svgs.job = drawChart($('#job-chart'), jobLayout, { idPrefix: 'job-', title: 'the collection job statechart' });
  state.svgs.scheduler = drawChart($('#scheduler-chart'), schedulerLayout, { idPrefix: 'sched-', title: 'the input scheduler statechart' });
  document.body.dataset.chartsReady = 'true';
  performance.mark('msgtrace-charts-ready');
}

function connect() {
  const source = new EventSource('/api/events');
  const live = $('#live-status');
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'pill ok';
  });
  source.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'pill bad';
  });
  source.addEventListener('snapshot', async (event) => {
    const snapshot = JSON.parse(event.data);
    state.clockOffsetMs = snapshot.nowMs - Date.now();
    state.jobs = new Map(snapshot.jobs.map((job) => [job.id, job]));
    state.inputs = new Map(snapshot.inputs.map((input) => [input.inputId, input]));
    state.health = snapshot.health;
    renderHealth();
    await prepareCharts(snapshot.charts);
    renderAll();
    document.body.dataset.ready = 'true';
  });
  source.addEventListener('job', (event) => {
    const job = JSON.parse(event.data);
    state.jobs.set(job.id, job);
    renderAll();
  });
  source.addEventListener('input', (event) => {
    const input = JSON.parse(event.data);
    state.inputs.set(input.inputId, input);
    autoSelect();
    renderInputs();
    renderScheduler();
  });
  source.addEventListener('health', (event) => {
    const health = JSON.parse(event.data);
    state.clockOffsetMs = health.nowMs - Date.now();
    state.health = health;
    renderHealth();
  });
}

setInterval(tickCountdowns, 200);
connect();
