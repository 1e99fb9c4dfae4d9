// losslab playground: one plain ES module, no build step, no request to any other host.
//
// What this file does: parse what the learner types, send it to the losslab API on the
// same origin, and show what comes back. Every number shown is the service's own
// (String(n) of the parsed JSON number, which round-trips an f64); nothing is recomputed.
// Charts are hand-written SVG: a line chart and a bar chart are ~200 lines here, which
// is less than vendoring a chart library and keeps the page free of third-party code.
// The page's state lives in the URL fragment (#kind=mse&pred=...), so a link reproduces it.

const SVG_NS = 'http://www.w3.org/2000/svg';
const STOP_RULES = ['loss_below', 'abs_error_below', 'gradient_norm_below'];
const COMPARE_POINTS = 121; // logits on the sigmoid+l2 / sigmoid+bce grid
const MAX_BARS = 2000; // a bar chart draws at most this many bars (the numbers list has all)

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function escapeXml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// ---------------------------------------------------------------------------------------
// Reading what the learner typed

/** A problem with one input, found before anything is sent. */
class InputError extends Error {}

/** Several InputErrors, each tied to the element it is about. */
class FieldErrors extends Error {
  constructor() {
    super('invalid input');
    this.list = [];
  }
  /** Runs parse(); on an InputError records it against `element` and returns undefined. */
  attempt(element, parse) {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      this.list.push({ element, message: error.message });
      return undefined;
    }
  }
  throwIfAny() {
    if (this.list.length) throw this;
  }
}

const NUMBER_TOKEN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumberToken(token) {
  if (!NUMBER_TOKEN.test(token)) throw new InputError(`"${token}" is not a number.`);
  const value = Number(token);
  if (!Number.isFinite(value)) throw new InputError(`${token} is outside the range of a 64-bit float.`);
  return value;
}

function assertFinite(value) {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new InputError('A number is outside the range of a 64-bit float.');
  }
  if (Array.isArray(value)) value.forEach(assertFinite);
  else if (value && typeof value === 'object') Object.values(value).forEach(assertFinite);
}

/**
 * A JSON array (flat or nested, sent as typed), or plain numbers separated by commas or
 * spaces: one line → a flat array, several lines → rows (a column of single numbers stays
 * flat). Empty text → undefined, so the service names the missing field itself.
 */
function parseArrayText(text) {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (trimmed.startsWith('[')) {
    let value;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      throw new InputError(`Not valid JSON: ${error.message}`);
    }
    if (!Array.isArray(value)) throw new InputError('Expected a JSON array.');
    assertFinite(value);
    return value;
  }
  const rows = trimmed
    .split(/\r?\n|;/)
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => line.split(/[\s,]+/).filter(Boolean).map(parseNumberToken));
  if (rows.length === 1) return rows[0];
  if (rows.every((row) => row.length === 1)) return rows.map((row) => row[0]);
  return rows;
}

/** A number or an array (init weights, bias, params): JSON, or a single number, or a list. */
function parseValueText(text) {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (trimmed === 'true') return true;
  if (trimmed === 'false') return false;
  if (trimmed.startsWith('[') || trimmed.startsWith('{') || trimmed.startsWith('"')) {
    let value;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      throw new InputError(`Not valid JSON: ${error.message}`);
    }
    assertFinite(value);
    return value;
  }
  if (NUMBER_TOKEN.test(trimmed)) return parseNumberToken(trimmed);
  return parseArrayText(trimmed);
}

function parseNumberText(text) {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  return parseNumberToken(trimmed);
}

/** An integer typed by the learner, kept as its digits when too large for a double (seed: u64). */
class RawNumber {
  constructor(text) {
    this.text = text;
  }
}

function parseIntegerText(text) {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (/^\d+$/.test(trimmed) && !Number.isSafeInteger(Number(trimmed))) return new RawNumber(trimmed);
  return parseNumberToken(trimmed);
}

function parseObjectText(text) {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    throw new InputError(`Not valid JSON: ${error.message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new InputError('Expected a JSON object {…}.');
  assertFinite(value);
  return value;
}

/** JSON text of a request body; RawNumber values are written as their digits. */
function toJson(body) {
  const json = JSON.stringify(body, (_key, value) => (value instanceof RawNumber ? `\u0000RAW${value.text}` : value));
  return json.replace(/"\\u0000RAW(\d+)"/g, '$1');
}

// ---------------------------------------------------------------------------------------
// Showing the service's numbers

/** The service's number as its JSON text gave it (String() round-trips an f64). */
function showNumber(value) {
  if (typeof value === 'number') return String(value);
  if (value === undefined || value === null) return '';
  if (Array.isArray(value) && value.length && value.every(Array.isArray)) {
    return `[${value.map((row) => JSON.stringify(row).replace(/,/g, ', ')).join(',\n ')}]`;
  }
  return JSON.stringify(value).replace(/,/g, ', ');
}

/** Text for a form field from a value in an example request. */
function valueToText(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return showNumber(value);
}

/** Flattens a number, number[] or number[][] into values with labels ("3" or "1,2"). */
function flatten(value) {
  if (typeof value === 'number') return { values: [value], labels: ['0'] };
  const values = [];
  const labels = [];
  (value || []).forEach((item, i) => {
    if (Array.isArray(item)) {
      item.forEach((v, j) => {
        values.push(v);
        labels.push(`${i},${j}`);
      });
    } else {
      values.push(item);
      labels.push(String(i));
    }
  });
  return { values, labels };
}

// ---------------------------------------------------------------------------------------
// Talking to the service (same origin only)

/**
 * fetch, with the class server's API key when it has keys (API.md, "API keys"): the key
 * is sent as a Bearer token; on a 401 the page asks for one once, keeps it for this tab
 * only (sessionStorage), and sends the request again.
 */
const KEY_SLOT = 'losslab-api-key';
async function keyedFetch(path, init) {
  const withKey = (key) => ({ ...init, headers: { ...init.headers, ...(key ? { Authorization: `Bearer ${key}` } : {}) } });
  const response = await fetch(path, withKey(sessionStorage.getItem(KEY_SLOT)));
  if (response.status !== 401 || typeof window.prompt !== 'function') return response;
  const key = (window.prompt('This server needs an API key (ask your teacher). It is kept for this tab only.') || '').trim();
  if (!key) return response;
  sessionStorage.setItem(KEY_SLOT, key);
  const again = await fetch(path, withKey(key));
  if (again.status === 401) sessionStorage.removeItem(KEY_SLOT);
  return again;
}

async function api(path, body, { signal, accept = 'application/json' } = {}) {
  const init = { headers: { Accept: accept }, signal };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = toJson(body);
  }
  const response = await keyedFetch(path, init);
  const text = await response.text();
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    data = { title: `Unexpected response (${response.status})`, detail: text.slice(0, 300), errors: [] };
  }
  return { ok: response.ok, status: response.status, data };
}

/** Splits a JSON pointer (/params/delta) into its unescaped segments. */
function pointerSegments(pointer) {
  if (typeof pointer !== 'string' || !pointer.startsWith('/')) return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * A panel's error display: messages go next to the input a field pointer names, or to
 * the panel's status line when no input matches. Every message is data-testid="error-message".
 */
class ErrorDisplay {
  constructor(root, statusElement, resolve) {
    this.root = root;
    this.status = statusElement;
    this.resolve = resolve; // pointer → element | null
    this.counter = 0;
    this.notes = [];
  }

  clear() {
    for (const node of this.notes) node.remove();
    this.notes = [];
    for (const node of $$('[aria-invalid="true"]', this.root)) {
      node.removeAttribute('aria-invalid');
      const ids = (node.getAttribute('aria-describedby') || '').split(/\s+/).filter((id) => id && !id.startsWith('err-'));
      if (ids.length) node.setAttribute('aria-describedby', ids.join(' '));
      else node.removeAttribute('aria-describedby');
    }
    this.status.textContent = '';
  }

  /** Puts `message` right after `element`'s input (inside its .field), or at the panel. */
  add(element, message, pointer) {
    const id = `err-${this.root.id}-${++this.counter}`;
    const note = h('p', { class: element ? 'field-error' : 'panel-error', id, 'data-testid': 'error-message', role: 'alert' });
    if (!element && pointer) note.append(h('code', {}, pointer), ': ');
    note.append(message);
    this.notes.push(note);
    if (!element) {
      this.status.after(note);
      return;
    }
    const details = element.closest('details');
    if (details) details.open = true;
    const field = element.closest('.field') || element.parentElement;
    if (element.matches('fieldset')) {
      const list = $('.param-list', element);
      (list || element).before(note);
    } else {
      field.append(note);
    }
    if (element.matches('input, textarea, select')) {
      element.setAttribute('aria-invalid', 'true');
      const ids = (element.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
      element.setAttribute('aria-describedby', [...ids, id].join(' '));
    }
  }

  /** Shows a problem+json body from the service. */
  problem(problem, httpStatus) {
    const errors = Array.isArray(problem.errors) ? problem.errors : [];
    const headline = [problem.title, problem.detail].filter(Boolean).join(': ') || `HTTP ${httpStatus}`;
    this.status.textContent = `The service answered ${problem.status ?? httpStatus}: ${headline}`;
    if (!errors.length) {
      this.add(null, problem.detail || problem.title || `HTTP ${httpStatus}`);
      return;
    }
    for (const error of errors) {
      this.add(this.resolve(error.field), error.message ?? '', error.field);
    }
  }

  local(fieldErrors) {
    this.status.textContent = 'Not sent: fix the marked input first.';
    for (const { element, message } of fieldErrors.list) this.add(element, message);
  }

  network(error) {
    this.status.textContent = '';
    this.add(null, `Could not reach the service: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Charts (hand-written SVG)

const chartDrawers = new Map(); // svg → () => void, redrawn when its width changes
const chartWidths = new Map();
const resizeObserver = new ResizeObserver((entries) => {
  requestAnimationFrame(() => {
    for (const entry of entries) {
      const svg = entry.target;
      const width = Math.round(svg.getBoundingClientRect().width);
      if (width && width !== chartWidths.get(svg) && chartDrawers.has(svg)) chartDrawers.get(svg)();
    }
  });
});

function draw(svg, drawer) {
  if (!chartDrawers.has(svg)) resizeObserver.observe(svg);
  chartDrawers.set(svg, drawer);
  drawer();
}

function chartWidth(svg) {
  const width = Math.round(svg.getBoundingClientRect().width);
  chartWidths.set(svg, width);
  return width > 0 ? Math.max(width, 200) : 600;
}

/** 1, 2 or 5 times a power of ten, near `raw`. */
function niceStep(raw) {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const base = 10 ** Math.floor(Math.log10(raw));
  if (!(base > 0) || !Number.isFinite(base)) return raw;
  const m = raw / base;
  const step = (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * base;
  return Number.isFinite(step) ? step : raw;
}

function linearTicks(lo, hi, count = 5) {
  const step = niceStep(hi / count - lo / count);
  const ticks = [];
  for (let k = Math.ceil(lo / step); ticks.length < 40; k += 1) {
    const value = k * step;
    if (!Number.isFinite(value) || value > hi + Math.abs(step) * 1e-9) break;
    ticks.push(value === 0 ? 0 : value);
  }
  return { ticks, step };
}

function tickLabel(value, step) {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-4 && magnitude < 1e6) {
    const decimals = Math.min(10, Math.max(0, -Math.floor(Math.log10(step))));
    return value.toFixed(decimals);
  }
  return value.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
}

/** A [lo, hi] with lo < hi around the finite values given (padded when they are all equal). */
function domainOf(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return [0, 1];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) / 10;
    return [Math.max(lo - pad, -Number.MAX_VALUE), Math.min(hi + pad, Number.MAX_VALUE)];
  }
  return [lo, hi];
}

/** Maps [lo, hi] onto [a, b] without overflowing for huge ranges. */
function scale(lo, hi, a, b) {
  const span = hi / 2 - lo / 2;
  return (v) => {
    const t = (v / 2 - lo / 2) / span;
    return a + (b - a) * (Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 1);
  };
}

const fmt = (v) => (Math.round(v * 100) / 100).toString();

/**
 * A line chart: series [{name, cls, points: [[x, y], ...]}], all on one pair of axes.
 * Each series is ONE <path> with one M/L command per point, in order.
 */
function lineChart(svg, { series, xLabel, yLabel, logY = false, height = 280, empty = 'Nothing to show yet.' }) {
  const width = chartWidth(svg);
  const m = { left: 62, right: 14, top: 12, bottom: 42 };
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('height', String(height));
  const xs = [];
  const ys = [];
  for (const s of series) {
    for (const [x, y] of s.points) {
      xs.push(x);
      ys.push(y);
    }
  }
  if (!xs.length) {
    svg.innerHTML = `<text class="empty" x="${width / 2}" y="${height / 2}" text-anchor="middle">${escapeXml(empty)}</text>`;
    return;
  }
  // A log axis needs positive values: fall back to linear when there are none.
  const positive = ys.filter((y) => y > 0 && Number.isFinite(y));
  const useLog = logY && positive.length > 0;
  const minPositive = useLog ? Math.min(...positive) : 0;
  const ty = useLog ? (y) => Math.log10(y > 0 ? y : minPositive) : (y) => y;
  let [xlo, xhi] = domainOf(xs);
  let [ylo, yhi] = domainOf(ys.map(ty));
  const xt = linearTicks(xlo, xhi, Math.max(2, Math.floor(width / 90)));
  let yTicks;
  if (useLog) {
    const first = Math.ceil(ylo);
    const last = Math.floor(yhi);
    const every = Math.max(1, Math.ceil((last - first + 1) / 6));
    yTicks = [];
    for (let k = first; k <= last; k += every) yTicks.push({ at: k, label: `1e${k}` });
    if (yTicks.length < 2) {
      const lt = linearTicks(10 ** ylo, 10 ** yhi, 4);
      yTicks = lt.ticks.filter((v) => v > 0).map((v) => ({ at: Math.log10(v), label: tickLabel(v, lt.step) }));
    }
  } else {
    // Widen the domain to whole steps, so the curve sits inside labelled space.
    const { step } = linearTicks(ylo, yhi, 5);
    const lo = Math.floor(ylo / step) * step;
    const hi = Math.ceil(yhi / step) * step;
    if (Number.isFinite(lo) && Number.isFinite(hi) && lo < hi) [ylo, yhi] = [lo, hi];
    yTicks = linearTicks(ylo, yhi, 5).ticks.map((v) => ({ at: v, label: tickLabel(v, step) }));
  }
  const x = scale(xlo, xhi, m.left, width - m.right);
  const y = scale(ylo, yhi, height - m.bottom, m.top);
  const parts = [];
  for (const tick of xt.ticks) {
    const px = fmt(x(tick));
    parts.push(`<line class="grid" x1="${px}" y1="${m.top}" x2="${px}" y2="${height - m.bottom}"/>`);
    parts.push(`<text x="${px}" y="${height - m.bottom + 16}" text-anchor="middle">${escapeXml(tickLabel(tick, xt.step))}</text>`);
  }
  for (const tick of yTicks) {
    const py = fmt(y(tick.at));
    parts.push(`<line class="grid" x1="${m.left}" y1="${py}" x2="${width - m.right}" y2="${py}"/>`);
    parts.push(`<text x="${m.left - 6}" y="${fmt(y(tick.at) + 4)}" text-anchor="end">${escapeXml(tick.label)}</text>`);
  }
  if (!useLog && ylo < 0 && yhi > 0) {
    const py = fmt(y(0));
    parts.push(`<line class="zero" x1="${m.left}" y1="${py}" x2="${width - m.right}" y2="${py}"/>`);
  }
  parts.push(`<line class="axis" x1="${m.left}" y1="${height - m.bottom}" x2="${width - m.right}" y2="${height - m.bottom}"/>`);
  parts.push(`<line class="axis" x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${height - m.bottom}"/>`);
  parts.push(`<text class="axis-title" x="${fmt((m.left + width - m.right) / 2)}" y="${height - 6}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  const cy = fmt((m.top + height - m.bottom) / 2);
  parts.push(`<text class="axis-title" x="14" y="${cy}" text-anchor="middle" transform="rotate(-90 14 ${cy})">${escapeXml(useLog ? `${yLabel} (log)` : yLabel)}</text>`);
  for (const s of series) {
    let d = '';
    s.points.forEach(([px, py], i) => {
      d += `${i ? ' L' : 'M'}${fmt(x(px))},${fmt(y(ty(py)))}`;
    });
    parts.push(`<path class="series ${s.cls}" data-series="${escapeXml(s.key)}" data-points="${s.points.length}" d="${d}"><title>${escapeXml(s.name)}</title></path>`);
    if (s.points.length === 1) {
      const [px, py] = s.points[0];
      parts.push(`<circle class="${s.cls}" cx="${fmt(x(px))}" cy="${fmt(y(ty(py)))}" r="3.5"/>`);
    }
  }
  svg.innerHTML = parts.join('');
}

/** A bar chart of values (one bar each, up to MAX_BARS), zero line, y ticks, hover titles. */
function barChart(svg, { values, labels, height = 210, empty = 'Nothing to show yet.' }) {
  const width = chartWidth(svg);
  const m = { left: 62, right: 10, top: 10, bottom: 26 };
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('height', String(height));
  if (!values.length) {
    svg.innerHTML = `<text class="empty" x="${width / 2}" y="${height / 2}" text-anchor="middle">${escapeXml(empty)}</text>`;
    return;
  }
  const shown = values.slice(0, MAX_BARS);
  let [lo, hi] = domainOf([0, ...shown]);
  const lt = linearTicks(lo, hi, 4);
  // Round the domain out to whole steps, so the tallest bar has a labelled tick above it.
  const [rlo, rhi] = [Math.floor(lo / lt.step) * lt.step, Math.ceil(hi / lt.step) * lt.step];
  if (Number.isFinite(rlo) && Number.isFinite(rhi) && rlo < rhi) [lo, hi] = [rlo, rhi];
  const y = scale(lo, hi, height - m.bottom, m.top);
  const plotWidth = width - m.left - m.right;
  const slot = plotWidth / shown.length;
  const barWidth = Math.max(0.5, slot * (shown.length > 60 ? 1 : 0.72));
  const parts = [];
  for (const tick of linearTicks(lo, hi, 4).ticks) {
    const py = fmt(y(tick));
    parts.push(`<line class="grid" x1="${m.left}" y1="${py}" x2="${width - m.right}" y2="${py}"/>`);
    parts.push(`<text x="${m.left - 6}" y="${fmt(y(tick) + 4)}" text-anchor="end">${escapeXml(tickLabel(tick, lt.step))}</text>`);
  }
  const zero = y(0);
  shown.forEach((v, i) => {
    const left = m.left + i * slot + (slot - barWidth) / 2;
    const top = Math.min(zero, y(v));
    const barHeight = Math.max(Math.abs(y(v) - zero), v === 0 ? 0 : 0.75);
    parts.push(`<rect class="bar${v < 0 ? ' neg' : ''}" x="${fmt(left)}" y="${fmt(top)}" width="${fmt(barWidth)}" height="${fmt(barHeight)}"><title>${escapeXml(`[${labels[i]}] ${showNumber(v)}`)}</title></rect>`);
  });
  const labelEvery = Math.max(1, Math.ceil(shown.length / Math.max(1, Math.floor(plotWidth / 34))));
  shown.forEach((_, i) => {
    if (i % labelEvery !== 0) return;
    parts.push(`<text x="${fmt(m.left + (i + 0.5) * slot)}" y="${height - m.bottom + 15}" text-anchor="middle">${escapeXml(labels[i])}</text>`);
  });
  parts.push(`<line class="axis" x1="${m.left}" y1="${fmt(zero)}" x2="${width - m.right}" y2="${fmt(zero)}"/>`);
  parts.push(`<line class="axis" x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${height - m.bottom}"/>`);
  if (values.length > MAX_BARS) {
    parts.push(`<text x="${width - m.right}" y="${m.top + 10}" text-anchor="end">first ${MAX_BARS} of ${values.length}</text>`);
  }
  svg.innerHTML = parts.join('');
}

// ---------------------------------------------------------------------------------------
// Parameter inputs generated from the catalogue (GET /losses)

function normalizeSpecs(params) {
  return (Array.isArray(params) ? params : []).map((p) => (typeof p === 'string' ? { name: p } : p)).filter((p) => p && p.name);
}

function limitText(limit, lower) {
  if (limit === undefined || limit === null) return '';
  if (typeof limit === 'object') {
    const op = lower ? (limit.inclusive === false ? '>' : '≥') : limit.inclusive === false ? '<' : '≤';
    return `${op} ${limit.value}`;
  }
  return `${lower ? '≥' : '≤'} ${limit}`;
}

function describeSpec(spec) {
  const bits = [];
  if (spec.description) bits.push(spec.description);
  if (spec.default !== undefined && spec.default !== null) bits.push(`default ${valueToText(spec.default)}`);
  // The service's description already states the range (with its open/closed ends).
  const range = [limitText(spec.min, true), limitText(spec.max, false)].filter(Boolean).join(', ');
  if (range && !/range/i.test(spec.description ?? '')) bits.push(range);
  return bits.join(' · ');
}

/** Fills a .params fieldset with one labelled input per param; `texts` gives their values. */
function renderParams(fieldset, specs, idPrefix, texts = {}) {
  const list = $('.param-list', fieldset);
  list.replaceChildren();
  fieldset.hidden = specs.length === 0;
  for (const spec of specs) {
    const id = `${idPrefix}-${spec.name}`;
    const hintId = `${id}-hint`;
    const field = h('div', { class: 'field', 'data-param': spec.name });
    const hint = describeSpec(spec);
    if (typeof spec.default === 'boolean') {
      field.classList.add('check');
      const input = h('input', { type: 'checkbox', id, 'data-param-input': spec.name, 'data-default': String(spec.default), 'aria-describedby': hint ? hintId : null });
      const text = texts[spec.name];
      input.checked = text === undefined ? spec.default : text === 'true';
      field.append(input, h('label', { for: id }, h('code', {}, spec.name), hint ? h('span', { class: 'hint', id: hintId }, ` — ${hint}`) : null));
    } else {
      const input = h('input', {
        type: 'text',
        id,
        'data-param-input': spec.name,
        spellcheck: 'false',
        autocomplete: 'off',
        placeholder: spec.default === undefined || spec.default === null ? '' : valueToText(spec.default),
        'aria-describedby': hint ? hintId : null,
      });
      input.value = texts[spec.name] ?? '';
      field.append(h('label', { for: id }, h('code', {}, spec.name)), input);
      if (hint) field.append(h('p', { class: 'hint', id: hintId }, hint));
    }
    list.append(field);
  }
}

/** The params object to send (only what the learner set), recording parse problems. */
function readParams(fieldset, errors) {
  const out = {};
  for (const input of $$('[data-param-input]', fieldset)) {
    const name = input.dataset.paramInput;
    if (input.type === 'checkbox') {
      if (String(input.checked) !== input.dataset.default) out[name] = input.checked;
    } else {
      const value = errors.attempt(input, () => parseValueText(input.value));
      if (value !== undefined) out[name] = value;
    }
  }
  return out;
}

/** The params' texts for the URL: {name: text}; checkboxes as "true"/"false" when not default. */
function paramTexts(fieldset) {
  const out = {};
  for (const input of $$('[data-param-input]', fieldset)) {
    const name = input.dataset.paramInput;
    if (input.type === 'checkbox') {
      if (String(input.checked) !== input.dataset.default) out[name] = String(input.checked);
    } else if (input.value.trim() !== '') {
      out[name] = input.value;
    }
  }
  return out;
}

/** A params fieldset when it is shown, else the select that chose it (errors must be seen). */
function visibleOr(fieldset, fallback) {
  return fieldset.hidden ? fallback : fieldset;
}

function paramInput(fieldset, name) {
  return $$('[data-param-input]', fieldset).find((input) => input.dataset.paramInput === name) || null;
}

function setOptions(select, values, labelOf = (v) => v) {
  select.replaceChildren(...values.map((value) => h('option', { value }, labelOf(value))));
}

function setSelect(select, value) {
  if (value !== undefined && [...select.options].some((o) => o.value === value)) {
    select.value = value;
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Page state ↔ URL fragment

const url = {
  read() {
    return new URLSearchParams(location.hash.replace(/^#/, ''));
  },
  timer: 0,
  /** Writes the state soon (coalescing keystrokes); the Copy button writes it at once. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.write(), 200);
  },
  write() {
    clearTimeout(this.timer);
    if (!app.ready) return;
    const params = new URLSearchParams();
    for (const [key, value] of collectState()) {
      if (value !== undefined && value !== null && value !== '') params.set(key, value);
    }
    const hash = params.toString();
    history.replaceState(null, '', `${location.pathname}${location.search}${hash ? `#${hash}` : ''}`);
    $('#permalink').value = location.href;
  },
};

const app = { ready: false, catalogue: null, examples: [], panel: 'loss' };

// ---------------------------------------------------------------------------------------
// Panel 1: loss calculator

const lossPanel = {
  root: $('#panel-loss'),
  seq: 0,
  kindInfo(kind) {
    return app.catalogue.losses.find((k) => k.kind === kind);
  },
};
lossPanel.errors = new ErrorDisplay(lossPanel.root, $('#loss-status'), (pointer) => {
  const [head, name] = pointerSegments(pointer);
  switch (head) {
    case 'predictions':
      return $('#predictions');
    case 'targets':
      return $('#targets');
    case 'weights':
      return $('#weights');
    case 'reduction':
      return $('#reduction');
    case 'from_logits':
      return $('#from-logits');
    case 'params':
      return (name && paramInput($('#loss-params'), name)) || visibleOr($('#loss-params'), $('#loss-kind'));
    case 'kind':
    case 'loss':
      return $('#loss-kind');
    default:
      return null;
  }
});

function onLossKindChange(texts = {}) {
  const info = lossPanel.kindInfo($('#loss-kind').value);
  renderParams($('#loss-params'), normalizeSpecs(info?.params), 'param', texts);
  $('#from-logits-field').hidden = !info?.from_logits;
  const formula = $('#loss-formula');
  formula.replaceChildren();
  if (info) {
    formula.append(h('p', {}, h('strong', {}, 'term: '), h('code', {}, info.formula ?? '')));
    if (info.derivative) formula.append(h('p', {}, h('strong', {}, 'd term / da: '), h('code', {}, info.derivative)));
    formula.append(h('p', {}, `one term per ${info.per === 'row' ? 'row' : 'element'}`));
    if (Array.isArray(info.guards) && info.guards.length) {
      formula.append(h('p', {}, h('strong', {}, 'guards: '), info.guards.join('; ')));
    }
  }
}

function buildLossBody() {
  const errors = new FieldErrors();
  const body = {};
  const predictions = errors.attempt($('#predictions'), () => parseArrayText($('#predictions').value));
  const targets = errors.attempt($('#targets'), () => parseArrayText($('#targets').value));
  const weights = errors.attempt($('#weights'), () => parseArrayText($('#weights').value));
  const params = readParams($('#loss-params'), errors);
  errors.throwIfAny();
  if (predictions !== undefined) body.predictions = predictions;
  if (targets !== undefined) body.targets = targets;
  body.reduction = $('#reduction').value;
  if (weights !== undefined) body.weights = weights;
  if (!$('#from-logits-field').hidden && $('#from-logits').checked) body.from_logits = true;
  if (Object.keys(params).length) body.params = params;
  return body;
}

function clearLossResults() {
  $('#loss-value').textContent = '';
  $('#loss-meta').textContent = '';
  $('#loss-guard').hidden = true;
  $('#loss-numbers').textContent = '';
  draw($('#terms-chart'), () => barChart($('#terms-chart'), { values: [], labels: [] }));
  draw($('#gradient-chart'), () => barChart($('#gradient-chart'), { values: [], labels: [] }));
}

async function computeLoss() {
  const seq = ++lossPanel.seq;
  lossPanel.errors.clear();
  url.schedule();
  let body;
  try {
    body = buildLossBody();
  } catch (error) {
    if (!(error instanceof FieldErrors)) throw error;
    clearLossResults();
    lossPanel.errors.local(error);
    return;
  }
  const kind = $('#loss-kind').value;
  const path = `/loss/${encodeURIComponent(kind)}`;
  lossPanel.root.setAttribute('aria-busy', 'true');
  $('#loss-status').textContent = 'Computing…';
  try {
    // The loss and its gradient, and (unless already asked) the terms: reduction "none".
    const [main, terms] = await Promise.all([
      api(path, { ...body, gradient: true }),
      body.reduction === 'none' ? null : api(path, { ...body, reduction: 'none' }),
    ]);
    if (seq !== lossPanel.seq) return;
    $('#loss-status').textContent = '';
    if (!main.ok) {
      clearLossResults();
      lossPanel.errors.problem(main.data, main.status);
      return;
    }
    const result = main.data;
    const termValues = body.reduction === 'none' ? result.loss : terms && terms.ok ? terms.data.loss : undefined;
    $('#loss-value').textContent = showNumber(result.loss);
    $('#loss-meta').textContent = `${result.kind ?? kind} · reduction ${result.reduction ?? body.reduction} · ${result.count} term${result.count === 1 ? '' : 's'}`;
    const guard = $('#loss-guard');
    guard.hidden = !result.guard;
    guard.textContent = result.guard ? `Guard acted: ${result.guard}` : '';
    $('#terms-caption').textContent = body.weights
      ? 'Per-term values s·l (the same request with reduction "none", weights applied)'
      : 'Per-term values (the same request with reduction "none")';
    const t = flatten(termValues);
    draw($('#terms-chart'), () => barChart($('#terms-chart'), t));
    const g = flatten(result.gradient);
    draw($('#gradient-chart'), () => barChart($('#gradient-chart'), g));
    $('#loss-numbers').textContent = [
      `loss: ${showNumber(result.loss)}`,
      `count: ${result.count}`,
      termValues !== undefined ? `terms: ${showNumber(termValues)}` : null,
      `gradient: ${showNumber(result.gradient)}`,
      result.guard ? `guard: ${result.guard}` : null,
    ]
      .filter(Boolean)
      .join('\n');
  } catch (error) {
    if (seq !== lossPanel.seq) return;
    clearLossResults();
    lossPanel.errors.network(error);
  } finally {
    if (seq === lossPanel.seq) lossPanel.root.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------
// Panel 2: through the activation

const actPanel = { root: $('#panel-activation'), seq: 0, compareSeq: 0 };
actPanel.errors = new ErrorDisplay(actPanel.root, $('#act-status'), (pointer) => {
  const [head, name] = pointerSegments(pointer);
  switch (head) {
    case 'logits':
    case 'predictions':
      return $('#logits');
    case 'targets':
      return $('#act-targets');
    case 'activation':
      return $('#activation');
    case 'activation_params':
      return (name && paramInput($('#act-activation-params'), name)) || visibleOr($('#act-activation-params'), $('#activation'));
    case 'loss':
      return $('#act-loss');
    case 'params':
      return (name && paramInput($('#act-loss-params'), name)) || visibleOr($('#act-loss-params'), $('#act-loss'));
    case 'reduction':
      return $('#act-reduction');
    case 'check':
      return $('#act-check');
    default:
      return null;
  }
});
actPanel.compareErrors = new ErrorDisplay($('#compare-form'), $('#compare-status'), (pointer) => {
  const [head] = pointerSegments(pointer);
  if (head === 'logits') return $('#compare-zmin');
  if (head === 'targets') return $('#compare-target');
  return null;
});

function activationSpecs(name) {
  const info = (app.catalogue.activations || []).find((a) => a.name === name);
  return normalizeSpecs(info?.params);
}

function onActivationChange(texts = {}) {
  const name = $('#activation').value;
  renderParams($('#act-activation-params'), activationSpecs(name), 'act-param', texts);
  const info = (app.catalogue.activations || []).find((a) => a.name === name);
  const formula = $('#activation-formula');
  formula.replaceChildren();
  if (info?.formula) formula.append(h('p', {}, h('strong', {}, 'a = '), h('code', {}, info.formula)));
}

function onActLossChange(texts = {}) {
  const info = lossPanel.kindInfo($('#act-loss').value);
  renderParams($('#act-loss-params'), normalizeSpecs(info?.params), 'act-loss-param', texts);
}

function clearActResults() {
  for (const id of ['#act-loss-value', '#act-meta', '#act-a', '#act-d-predictions', '#d-logits']) $(id).textContent = '';
  $('#act-guard').hidden = true;
  $('#act-check-result').hidden = true;
  draw($('#act-dpred-chart'), () => barChart($('#act-dpred-chart'), { values: [], labels: [] }));
  draw($('#act-dlogits-chart'), () => barChart($('#act-dlogits-chart'), { values: [], labels: [] }));
}

async function computeActivation() {
  const seq = ++actPanel.seq;
  actPanel.errors.clear();
  url.schedule();
  const errors = new FieldErrors();
  const logits = errors.attempt($('#logits'), () => parseArrayText($('#logits').value));
  const targets = errors.attempt($('#act-targets'), () => parseArrayText($('#act-targets').value));
  const activationParams = readParams($('#act-activation-params'), errors);
  const params = readParams($('#act-loss-params'), errors);
  if (errors.list.length) {
    clearActResults();
    actPanel.errors.local(errors);
    return;
  }
  const body = { loss: $('#act-loss').value, activation: $('#activation').value, reduction: $('#act-reduction').value };
  if (logits !== undefined) body.logits = logits;
  if (targets !== undefined) body.targets = targets;
  if (Object.keys(activationParams).length) body.activation_params = activationParams;
  if (Object.keys(params).length) body.params = params;
  if ($('#act-check').checked) body.check = true;
  actPanel.root.setAttribute('aria-busy', 'true');
  $('#act-status').textContent = 'Computing…';
  try {
    const answer = await api('/gradient', body);
    if (seq !== actPanel.seq) return;
    $('#act-status').textContent = '';
    if (!answer.ok) {
      clearActResults();
      actPanel.errors.problem(answer.data, answer.status);
      return;
    }
    const r = answer.data;
    $('#act-loss-value').textContent = showNumber(r.loss);
    $('#act-meta').textContent = `${body.activation} → ${body.loss} · reduction ${body.reduction} · ${r.count} term${r.count === 1 ? '' : 's'}`;
    $('#act-a').textContent = showNumber(r.activations);
    $('#act-d-predictions').textContent = showNumber(r.d_predictions);
    $('#d-logits').textContent = showNumber(r.d_logits);
    const guard = $('#act-guard');
    guard.hidden = !r.guard;
    guard.textContent = r.guard ? `Guard acted: ${r.guard}` : '';
    const check = $('#act-check-result');
    check.hidden = !r.check;
    if (r.check) {
      check.textContent = `Central differences (h = ${r.check.epsilon ?? '1e-6·max(1, |z|)'}): relative difference ${r.check.relative_difference}, largest absolute error ${r.check.max_abs_error}, largest relative error ${r.check.max_rel_error} — ${r.check.passed ? 'passed' : 'not passed'} (criterion ≤ 1e-7).`;
    }
    const dp = flatten(r.d_predictions);
    const dz = flatten(r.d_logits);
    draw($('#act-dpred-chart'), () => barChart($('#act-dpred-chart'), dp));
    draw($('#act-dlogits-chart'), () => barChart($('#act-dlogits-chart'), dz));
  } catch (error) {
    if (seq !== actPanel.seq) return;
    clearActResults();
    actPanel.errors.network(error);
  } finally {
    if (seq === actPanel.seq) actPanel.root.removeAttribute('aria-busy');
  }
}

/** The l2-vs-bce picture: one /gradient request per loss over a grid of logits. */
async function plotComparison() {
  const seq = ++actPanel.compareSeq;
  actPanel.compareErrors.clear();
  url.schedule();
  const errors = new FieldErrors();
  const zmin = errors.attempt($('#compare-zmin'), () => parseNumberText($('#compare-zmin').value)) ?? -6;
  const zmax = errors.attempt($('#compare-zmax'), () => parseNumberText($('#compare-zmax').value)) ?? 6;
  if (!errors.list.length && !(zmin < zmax)) errors.list.push({ element: $('#compare-zmax'), message: '"z to" must be larger than "z from".' });
  if (errors.list.length) {
    actPanel.compareErrors.local(errors);
    return;
  }
  const y = Number($('#compare-target').value);
  const n = COMPARE_POINTS;
  // The grid is the request's input, not a result: z_i = zmin + (zmax − zmin)·i/(n − 1).
  const logits = Array.from({ length: n }, (_, i) => (i === n - 1 ? zmax : zmin + ((zmax - zmin) * i) / (n - 1)));
  const targets = new Array(n).fill(y);
  const request = (loss) => api('/gradient', { loss, activation: 'sigmoid', logits, targets, reduction: 'none' });
  $('#compare-status').textContent = 'Asking the service…';
  try {
    const [l2, bce] = await Promise.all([request('l2'), request('bce')]);
    if (seq !== actPanel.compareSeq) return;
    $('#compare-status').textContent = '';
    for (const answer of [l2, bce]) {
      if (!answer.ok) {
        actPanel.compareErrors.problem(answer.data, answer.status);
        return;
      }
    }
    const zip = (values) => logits.map((z, i) => [z, values[i]]);
    const series = (key) => [
      { key: 'l2', name: 'sigmoid + l2', cls: 'series-a', points: zip(l2.data[key]) },
      { key: 'bce', name: 'sigmoid + bce', cls: 'series-b', points: zip(bce.data[key]) },
    ];
    draw($('#compare-loss-chart'), () => lineChart($('#compare-loss-chart'), { series: series('loss'), xLabel: 'logit z', yLabel: 'loss' }));
    draw($('#compare-grad-chart'), () => lineChart($('#compare-grad-chart'), { series: series('d_logits'), xLabel: 'logit z', yLabel: 'dL/dz' }));
    // Most wrong end of the grid: z far below 0 for y = 1, far above for y = 0.
    const i = y === 1 ? 0 : n - 1;
    $('#compare-note').textContent =
      `Confidently wrong at z = ${logits[i]} (target ${y}): the service says a = ${showNumber(l2.data.activations?.[i])}, ` +
      `l2's dL/dz = ${showNumber(l2.data.d_logits[i])} but bce's dL/dz = ${showNumber(bce.data.d_logits[i])}. ` +
      'The squared error barely moves a neuron that is sure and wrong; cross-entropy pushes it hardest exactly there.';
  } catch (error) {
    if (seq !== actPanel.compareSeq) return;
    actPanel.compareErrors.network(error);
  }
}

// ---------------------------------------------------------------------------------------
// Panel 3: training (two runs side by side, streamed as NDJSON)

/** The form fields of one run: [key, label, kind, extra attrs]. Keys are the URL's too. */
const RUN_FIELDS = [
  ['example', 'Example', 'select', { testid: 'train-example' }],
  ['loss', 'Loss', 'select', { testid: 'train-loss' }],
  ['activation', 'Activation', 'select', { testid: 'train-activation' }],
  ['learning_rate', 'Learning rate', 'text', { testid: 'learning-rate', inputmode: 'decimal' }],
  ['optimizer', 'Optimizer', 'select', { testid: 'train-optimizer' }],
  ['batch_size', 'Batch size', 'text', { testid: 'batch-size', inputmode: 'numeric', placeholder: 'full batch' }],
  ['max_iterations', 'Max iterations', 'text', { testid: 'max-iterations', inputmode: 'numeric' }],
  ['stop_loss_below', 'Stop when loss <', 'text', { testid: 'stop-loss-below', inputmode: 'decimal', placeholder: 'off' }],
  ['stop_abs_error_below', 'Stop when max |a − y| <', 'text', { testid: 'stop-abs-error-below', inputmode: 'decimal', placeholder: 'off' }],
  ['stop_gradient_norm_below', 'Stop when ‖gradient‖ <', 'text', { testid: 'stop-gradient-norm-below', inputmode: 'decimal', placeholder: 'off' }],
  ['inputs', 'Inputs X (one sample per row)', 'textarea', { testid: 'train-inputs', more: true }],
  ['targets', 'Targets y', 'textarea', { testid: 'train-targets', more: true }],
  ['init_weights', 'Initial weights', 'text', { testid: 'init-weights', more: true, placeholder: '0' }],
  ['init_bias', 'Initial bias', 'text', { testid: 'init-bias', more: true, placeholder: '0' }],
  ['use_bias', 'Train the bias (use_bias)', 'checkbox', { testid: 'use-bias', more: true }],
  ['seed', 'Shuffle seed', 'text', { testid: 'seed', more: true, inputmode: 'numeric', placeholder: 'no shuffle' }],
  ['trace_every', 'Trace every … iterations', 'text', { testid: 'trace-every', more: true, inputmode: 'numeric', placeholder: '1' }],
  ['extra', 'Other request fields (JSON object)', 'textarea', { testid: 'train-extra', more: true }],
];

const PARAM_GROUPS = [
  ['p', 'Loss parameters', 'params'],
  ['ap', 'Activation parameters', 'activation_params'],
  ['op', 'Optimizer parameters', 'optimizer'],
];

const runs = {};

function buildRunForm(key) {
  const root = $(`#run-${key}`);
  const suffix = key === 'a' ? '' : `-${key}`;
  const run = { key, root, suffix, fields: {}, groups: {}, points: [], summary: null, controller: null };
  const more = h('details', {}, h('summary', {}, 'Neuron, data and more'));
  const grid = h('div', { class: 'row' });
  const add = (parent, node) => parent.append(node);
  for (const [name, label, kind, opts] of RUN_FIELDS) {
    const id = `${key}-${name.replace(/_/g, '-')}`;
    const testid = `${opts.testid}${suffix}`;
    let input;
    if (kind === 'select') input = h('select', { id, 'data-testid': testid });
    else if (kind === 'textarea') input = h('textarea', { id, 'data-testid': testid, rows: 2, spellcheck: 'false', autocomplete: 'off' });
    else if (kind === 'checkbox') input = h('input', { id, 'data-testid': testid, type: 'checkbox' });
    else input = h('input', { id, 'data-testid': testid, type: 'text', spellcheck: 'false', autocomplete: 'off', inputmode: opts.inputmode, placeholder: opts.placeholder });
    const field = h('div', { class: kind === 'checkbox' ? 'field check' : 'field', 'data-key': name });
    if (kind === 'checkbox') field.append(input, h('label', { for: id }, label));
    else field.append(h('label', { for: id }, label), input);
    run.fields[name] = input;
    add(opts.more ? more : name === 'example' ? root : grid, field);
    if (name === 'example') {
      run.description = h('p', { class: 'example-description', id: `${id}-description` });
      input.setAttribute('aria-describedby', run.description.id);
      root.append(run.description, grid);
    }
  }
  for (const [group, legend] of PARAM_GROUPS) {
    const fieldset = h('fieldset', { class: 'params field', hidden: true }, h('legend', {}, legend), h('div', { class: 'param-list' }));
    run.groups[group] = fieldset;
    more.before(fieldset);
  }
  root.append(more);
  run.results = {
    progress: $(`#train-progress${suffix}`),
    iterations: $(`#train-iterations${suffix}`),
    stopReason: $(`#train-stop-reason${suffix}`),
    converged: $(`#train-converged${suffix}`),
    finalLoss: $(`#train-final-loss${suffix}`),
    finalWeights: $(`#train-final-weights${suffix}`),
    finalBias: $(`#train-final-bias${suffix}`),
  };
  run.errors = new ErrorDisplay(root, $('#train-status'), (pointer) => fieldForTrainPointer(run, pointer));
  // Messages without a field go under the run they belong to, not to the shared status.
  run.errors.status = h('p', { class: 'run-status', role: 'status' });
  root.append(run.errors.status);
  runs[key] = run;
  return run;
}

function fieldForTrainPointer(run, pointer) {
  const [head, sub] = pointerSegments(pointer);
  const f = run.fields;
  switch (head) {
    case 'inputs':
    case 'targets':
    case 'learning_rate':
    case 'batch_size':
    case 'seed':
    case 'max_iterations':
    case 'trace_every':
    case 'use_bias':
    case 'loss':
    case 'activation':
      return f[head];
    case 'init':
      return sub === 'bias' ? f.init_bias : f.init_weights;
    case 'stop':
      return f[`stop_${sub}`] || f.stop_loss_below;
    case 'optimizer':
      return (sub && sub !== 'kind' && paramInput(run.groups.op, sub)) || f.optimizer;
    case 'params':
      return (sub && paramInput(run.groups.p, sub)) || visibleOr(run.groups.p, f.loss);
    case 'activation_params':
      return (sub && paramInput(run.groups.ap, sub)) || visibleOr(run.groups.ap, f.activation);
    default:
      return f.extra.value.includes(`"${head}"`) ? f.extra : null;
  }
}

function optimizerSpecs(kind) {
  const info = (app.catalogue.optimizers || []).find((o) => o.kind === kind);
  return normalizeSpecs(info?.params);
}

function renderRunParams(run, which, texts = {}) {
  const f = run.fields;
  if (which === 'p') renderParams(run.groups.p, normalizeSpecs(lossPanel.kindInfo(f.loss.value)?.params), `${run.key}-p`, texts);
  if (which === 'ap') renderParams(run.groups.ap, activationSpecs(f.activation.value), `${run.key}-ap`, texts);
  if (which === 'op') renderParams(run.groups.op, optimizerSpecs(f.optimizer.value), `${run.key}-op`, texts);
}

/** An example request as form texts: {field: text, 'p.name': text, ...}. */
function requestToTexts(request) {
  const rest = { ...(request || {}) };
  const take = (k) => {
    const v = rest[k];
    delete rest[k];
    return v;
  };
  const texts = {};
  texts.inputs = valueToText(take('inputs'));
  texts.targets = valueToText(take('targets'));
  texts.loss = take('loss') ?? '';
  texts.activation = take('activation') ?? 'identity';
  texts.learning_rate = valueToText(take('learning_rate'));
  const optimizer = take('optimizer');
  if (optimizer && typeof optimizer === 'object') {
    texts.optimizer = optimizer.kind ?? 'sgd';
    for (const [k, v] of Object.entries(optimizer)) if (k !== 'kind') texts[`op.${k}`] = valueToText(v);
  } else {
    texts.optimizer = optimizer ?? 'sgd';
  }
  texts.batch_size = valueToText(take('batch_size'));
  texts.max_iterations = valueToText(take('max_iterations'));
  const stop = { ...(take('stop') || {}) };
  for (const rule of STOP_RULES) {
    texts[`stop_${rule}`] = valueToText(stop[rule]);
    delete stop[rule];
  }
  if (Object.keys(stop).length) rest.stop = stop;
  const init = take('init') || {};
  texts.init_weights = valueToText(init.weights);
  texts.init_bias = valueToText(init.bias);
  texts.use_bias = take('use_bias') === false ? 'false' : 'true';
  texts.seed = valueToText(take('seed'));
  texts.trace_every = valueToText(take('trace_every'));
  for (const [k, v] of Object.entries(take('params') || {})) texts[`p.${k}`] = valueToText(v);
  for (const [k, v] of Object.entries(take('activation_params') || {})) texts[`ap.${k}`] = valueToText(v);
  texts.extra = Object.keys(rest).length ? JSON.stringify(rest) : '';
  return texts;
}

/** The run's form as texts, in the same shape as requestToTexts. */
function runTexts(run) {
  const texts = {};
  for (const [name, input] of Object.entries(run.fields)) {
    if (name === 'example') continue;
    texts[name] = input.type === 'checkbox' ? String(input.checked) : input.value;
  }
  for (const [group] of PARAM_GROUPS) {
    for (const [k, v] of Object.entries(paramTexts(run.groups[group]))) texts[`${group}.${k}`] = v;
  }
  return texts;
}

/** Sets the form from texts; unknown select values leave the select as it is. */
function setRunTexts(run, texts) {
  const f = run.fields;
  for (const name of ['loss', 'activation', 'optimizer']) if (texts[name] !== undefined) setSelect(f[name], texts[name]);
  for (const [name, input] of Object.entries(f)) {
    if (name === 'example' || input.tagName === 'SELECT' || texts[name] === undefined) continue;
    if (input.type === 'checkbox') input.checked = texts[name] !== 'false';
    else input.value = texts[name];
  }
  for (const [group] of PARAM_GROUPS) {
    const groupTexts = {};
    for (const [k, v] of Object.entries(texts)) if (k.startsWith(`${group}.`)) groupTexts[k.slice(group.length + 1)] = v;
    renderRunParams(run, group, groupTexts);
  }
}

function exampleByName(name) {
  return app.examples.find((e) => e.name === name);
}

function loadExample(run, name) {
  const example = exampleByName(name);
  if (!example) return;
  run.fields.example.value = name;
  run.description.textContent = example.description ?? '';
  // Start from a clean form, so nothing of the previous example lingers.
  for (const [field, input] of Object.entries(run.fields)) {
    if (field === 'example' || input.tagName === 'SELECT') continue;
    if (input.type === 'checkbox') input.checked = true;
    else input.value = '';
  }
  setRunTexts(run, requestToTexts(example.request));
}

function buildTrainBody(run) {
  const errors = new FieldErrors();
  const f = run.fields;
  const body = {};
  const put = (key, value) => {
    if (value !== undefined) body[key] = value;
  };
  put('inputs', errors.attempt(f.inputs, () => parseArrayText(f.inputs.value)));
  put('targets', errors.attempt(f.targets, () => parseArrayText(f.targets.value)));
  body.activation = f.activation.value;
  const activationParams = readParams(run.groups.ap, errors);
  if (Object.keys(activationParams).length) body.activation_params = activationParams;
  body.loss = f.loss.value;
  const params = readParams(run.groups.p, errors);
  if (Object.keys(params).length) body.params = params;
  const weights = errors.attempt(f.init_weights, () => parseValueText(f.init_weights.value));
  const bias = errors.attempt(f.init_bias, () => parseValueText(f.init_bias.value));
  if (weights !== undefined || bias !== undefined) {
    body.init = {};
    if (weights !== undefined) body.init.weights = weights;
    if (bias !== undefined) body.init.bias = bias;
  }
  body.use_bias = f.use_bias.checked;
  put('learning_rate', errors.attempt(f.learning_rate, () => parseNumberText(f.learning_rate.value)));
  const optimizerParams = readParams(run.groups.op, errors);
  body.optimizer = Object.keys(optimizerParams).length ? { kind: f.optimizer.value, ...optimizerParams } : f.optimizer.value;
  put('batch_size', errors.attempt(f.batch_size, () => parseIntegerText(f.batch_size.value)));
  put('seed', errors.attempt(f.seed, () => parseIntegerText(f.seed.value)));
  put('max_iterations', errors.attempt(f.max_iterations, () => parseIntegerText(f.max_iterations.value)));
  const stop = {};
  for (const rule of STOP_RULES) {
    const input = f[`stop_${rule}`];
    const value = errors.attempt(input, () => parseNumberText(input.value));
    if (value !== undefined) stop[rule] = value;
  }
  if (Object.keys(stop).length) body.stop = stop;
  put('trace_every', errors.attempt(f.trace_every, () => parseIntegerText(f.trace_every.value)));
  const extra = errors.attempt(f.extra, () => parseObjectText(f.extra.value));
  errors.throwIfAny();
  // Extra fields fill in what the form left unset (one level deep for objects).
  for (const [k, v] of Object.entries(extra || {})) {
    if (body[k] === undefined) body[k] = v;
    else if (v && typeof v === 'object' && !Array.isArray(v) && body[k] && typeof body[k] === 'object' && !Array.isArray(body[k])) {
      body[k] = { ...v, ...body[k] };
    }
  }
  return body;
}

function runLabel(run) {
  return `${run.key.toUpperCase()}: ${run.fields.loss.value}, lr ${run.fields.learning_rate.value || '?'}, ${run.fields.optimizer.value}`;
}

function activeRuns() {
  return $('#b-enabled').checked ? [runs.a, runs.b] : [runs.a];
}

let trainFrame = 0;
let trainTimer = 0;
let trainDrawCost = 0; // ms the last redraw took
function redrawTrainChart() {
  cancelAnimationFrame(trainFrame);
  clearTimeout(trainTimer);
  trainFrame = 0;
  trainTimer = 0;
  const started = performance.now();
  const shown = activeRuns();
  const series = shown
    .filter((run) => run.points.length || run.summary)
    .map((run) => ({ key: run.key, name: runLabel(run), cls: `series-${run.key}`, points: run.points }));
  const svg = $('#train-chart');
  draw(svg, () => lineChart(svg, { series, xLabel: 'iteration', yLabel: 'loss', logY: $('#train-log').checked, height: 320, empty: 'Press Run: the loss of every trace row appears here as the service computes it.' }));
  $('#train-legend').replaceChildren(
    ...shown.map((run) => h('li', {}, h('span', { class: `swatch series-${run.key}`, 'aria-hidden': 'true' }), runLabel(run), run.points.length ? ` — ${run.points.length} rows` : '')),
  );
  trainDrawCost = performance.now() - started;
}
/** Redraws on the next frame; when a redraw is costly (long traces), waits ~10× its cost. */
function scheduleTrainRedraw() {
  if (trainFrame || trainTimer) return;
  if (trainDrawCost > 8) trainTimer = setTimeout(() => (trainFrame = requestAnimationFrame(redrawTrainChart)), trainDrawCost * 10);
  else trainFrame = requestAnimationFrame(redrawTrainChart);
}

function clearRunResults(run) {
  run.points = [];
  run.summary = null;
  for (const node of Object.values(run.results)) node.textContent = '';
}

/** Reads an NDJSON body line by line as it arrives. */
async function* ndjsonLines(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield line;
    }
    if (done) break;
  }
  if (buffer.trim()) yield buffer.trim();
}

async function streamRun(run, body, signal) {
  const r = run.results;
  const onRow = (row) => {
    run.points.push([row.iteration, row.loss]);
    r.progress.textContent = `iteration ${row.iteration}: loss ${showNumber(row.loss)}`;
    scheduleTrainRedraw();
  };
  const onSummary = (summary) => {
    run.summary = summary;
    r.iterations.textContent = String(summary.iterations);
    r.stopReason.textContent = summary.stop_reason ?? '';
    r.converged.textContent = String(summary.converged);
    r.finalLoss.textContent = showNumber(summary.final?.loss);
    r.finalWeights.textContent = showNumber(summary.final?.weights);
    r.finalBias.textContent = showNumber(summary.final?.bias);
    r.progress.textContent = `done: ${run.points.length} trace row${run.points.length === 1 ? '' : 's'} received`;
    scheduleTrainRedraw();
  };
  const response = await keyedFetch('/train', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/x-ndjson' },
    body: toJson(body),
    signal,
  });
  if (!response.ok) {
    const text = await response.text();
    let problem;
    try {
      problem = JSON.parse(text);
    } catch {
      problem = { title: `HTTP ${response.status}`, detail: text.slice(0, 300), errors: [] };
    }
    run.errors.problem(problem, response.status);
    r.progress.textContent = 'not run';
    return;
  }
  const type = response.headers.get('content-type') || '';
  if (!type.includes('ndjson')) {
    // A server that ignored the Accept header: the whole response at once.
    const whole = await response.json();
    (whole.trace || []).forEach(onRow);
    onSummary(whole);
    return;
  }
  for await (const line of ndjsonLines(response)) {
    const item = JSON.parse(line);
    if ('stop_reason' in item) onSummary(item);
    else if ('iteration' in item) onRow(item);
    else {
      run.errors.problem(item, item.status ?? 500);
      r.progress.textContent = `stopped with an error after ${run.points.length} rows`;
      return;
    }
  }
  if (!run.summary) r.progress.textContent = `the stream ended after ${run.points.length} rows without a summary`;
}

let trainController = null;

async function runTraining() {
  url.write();
  const selected = activeRuns();
  for (const run of Object.values(runs)) {
    run.errors.clear();
    clearRunResults(run);
  }
  $('#train-status').textContent = '';
  const bodies = [];
  for (const run of selected) {
    try {
      bodies.push([run, buildTrainBody(run)]);
    } catch (error) {
      if (!(error instanceof FieldErrors)) throw error;
      run.errors.local(error);
    }
  }
  redrawTrainChart();
  if (bodies.length !== selected.length) {
    $('#train-status').textContent = 'Not run: fix the marked input first.';
    return;
  }
  trainController?.abort();
  const controller = new AbortController();
  trainController = controller;
  $('#train-run').disabled = true;
  $('#train-stop').disabled = false;
  $('#panel-train').setAttribute('aria-busy', 'true');
  $('#train-status').textContent = 'Training…';
  const outcomes = await Promise.allSettled(bodies.map(([run, body]) => streamRun(run, body, controller.signal)));
  outcomes.forEach((outcome, i) => {
    if (outcome.status === 'rejected') {
      const run = bodies[i][0];
      if (outcome.reason?.name === 'AbortError') run.results.progress.textContent = `stopped by you after ${run.points.length} rows`;
      else run.errors.network(outcome.reason);
    }
  });
  if (trainController === controller) {
    trainController = null;
    $('#train-run').disabled = false;
    $('#train-stop').disabled = true;
    $('#panel-train').removeAttribute('aria-busy');
    $('#train-status').textContent = controller.signal.aborted ? 'Stopped.' : 'Done.';
  }
  redrawTrainChart();
}

function onRunBToggle() {
  const on = $('#b-enabled').checked;
  runs.b.root.classList.toggle('disabled', !on);
  // A disabled fieldset disables everything in it but its legend (where the checkbox is).
  runs.b.root.disabled = !on;
  $('#result-b').hidden = !on;
  redrawTrainChart();
}

// ---------------------------------------------------------------------------------------
// State: what goes into the URL, and how a URL is applied

const DEFAULTS = {
  kind: 'mse',
  pred: '[2.5, 0.0, 2.1, 7.8]',
  tgt: '[3, -0.5, 2, 7]',
  red: 'mean',
  act: 'sigmoid',
  aloss: 'bce',
  z: '-4, -1, 0, 2, 5',
  atgt: '1, 0, 1, 1, 0',
  ared: 'mean',
  cy: '1',
  zmin: '-6',
  zmax: '6',
};

function* collectState() {
  yield ['panel', app.panel];
  yield ['kind', $('#loss-kind').value];
  yield ['red', $('#reduction').value];
  yield ['pred', $('#predictions').value];
  yield ['tgt', $('#targets').value];
  yield ['w', $('#weights').value];
  if (!$('#from-logits-field').hidden && $('#from-logits').checked) yield ['logits', '1'];
  for (const [k, v] of Object.entries(paramTexts($('#loss-params')))) yield [`p.${k}`, v];
  yield ['act', $('#activation').value];
  for (const [k, v] of Object.entries(paramTexts($('#act-activation-params')))) yield [`ap.${k}`, v];
  yield ['aloss', $('#act-loss').value];
  for (const [k, v] of Object.entries(paramTexts($('#act-loss-params')))) yield [`alp.${k}`, v];
  yield ['ared', $('#act-reduction').value];
  yield ['z', $('#logits').value];
  yield ['atgt', $('#act-targets').value];
  if ($('#act-check').checked) yield ['check', '1'];
  yield ['cy', $('#compare-target').value];
  yield ['zmin', $('#compare-zmin').value];
  yield ['zmax', $('#compare-zmax').value];
  // Training: the example's name plus only the fields that differ from it (short links).
  for (const run of Object.values(runs)) {
    yield [`${run.key}.ex`, run.fields.example.value];
    const base = requestToTexts(exampleByName(run.fields.example.value)?.request);
    const now = runTexts(run);
    for (const [k, v] of Object.entries(now)) {
      if ((base[k] ?? '') !== v) yield [`${run.key}.${k}`, v === '' ? '~' : v];
    }
    // A param set in the example but cleared here.
    for (const k of Object.keys(base)) if (k.includes('.') && now[k] === undefined) yield [`${run.key}.${k}`, '~'];
  }
  yield ['b', $('#b-enabled').checked ? '1' : '0'];
  if ($('#train-log').checked) yield ['log', '1'];
}

function prefixed(state, prefix) {
  const out = {};
  for (const [k, v] of state) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

function applyState(state) {
  const get = (key) => state.get(key) ?? DEFAULTS[key];
  // Panel 1
  if (!setSelect($('#loss-kind'), get('kind'))) setSelect($('#loss-kind'), DEFAULTS.kind);
  onLossKindChange(prefixed(state, 'p.'));
  setSelect($('#reduction'), get('red'));
  $('#predictions').value = get('pred') ?? '';
  $('#targets').value = get('tgt') ?? '';
  $('#weights').value = get('w') ?? '';
  $('#from-logits').checked = state.get('logits') === '1';
  // Panel 2
  if (!setSelect($('#activation'), get('act'))) setSelect($('#activation'), DEFAULTS.act);
  onActivationChange(prefixed(state, 'ap.'));
  if (!setSelect($('#act-loss'), get('aloss'))) setSelect($('#act-loss'), DEFAULTS.aloss);
  onActLossChange(prefixed(state, 'alp.'));
  setSelect($('#act-reduction'), get('ared'));
  $('#logits').value = get('z') ?? '';
  $('#act-targets').value = get('atgt') ?? '';
  $('#act-check').checked = state.get('check') === '1';
  setSelect($('#compare-target'), get('cy'));
  $('#compare-zmin').value = get('zmin');
  $('#compare-zmax').value = get('zmax');
  // Panel 3
  for (const run of Object.values(runs)) {
    const fallback = app.examples[run.key === 'a' ? 0 : Math.min(1, app.examples.length - 1)]?.name;
    const name = exampleByName(state.get(`${run.key}.ex`)) ? state.get(`${run.key}.ex`) : fallback;
    loadExample(run, name);
    const overrides = {};
    for (const [k, v] of Object.entries(prefixed(state, `${run.key}.`))) if (k !== 'ex') overrides[k] = v === '~' ? '' : v;
    if (Object.keys(overrides).length) {
      const merged = { ...runTexts(run), ...overrides };
      for (const [k, v] of Object.entries(merged)) if (k.includes('.') && v === '') delete merged[k];
      setRunTexts(run, merged);
    }
  }
  $('#b-enabled').checked = state.get('b') !== '0' && app.examples.length > 0;
  $('#train-log').checked = state.get('log') === '1';
  onRunBToggle();
  setPanel(state.get('panel') ?? 'loss', { scroll: state.has('panel') });
}

function setPanel(name, { scroll = false, focus = false } = {}) {
  if (!['loss', 'activation', 'train'].includes(name)) name = 'loss';
  app.panel = name;
  for (const button of $$('[data-goto]')) button.setAttribute('aria-current', String(button.dataset.goto === name));
  for (const section of $$('.panel')) section.classList.toggle('current', section.dataset.panel === name);
  const section = $(`#panel-${name}`);
  if (scroll) section.scrollIntoView({ block: 'start' });
  if (focus) $('h2', section).focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------------------
// Start-up

function wire() {
  $('#loss-form').addEventListener('submit', (event) => {
    event.preventDefault();
    computeLoss();
  });
  $('#loss-kind').addEventListener('change', () => {
    onLossKindChange();
    computeLoss();
  });
  $('#reduction').addEventListener('change', computeLoss);
  $('#act-form').addEventListener('submit', (event) => {
    event.preventDefault();
    computeActivation();
  });
  $('#activation').addEventListener('change', () => {
    onActivationChange();
    computeActivation();
  });
  $('#act-loss').addEventListener('change', () => {
    onActLossChange();
    computeActivation();
  });
  $('#act-reduction').addEventListener('change', computeActivation);
  $('#compare-form').addEventListener('submit', (event) => {
    event.preventDefault();
    plotComparison();
  });
  $('#compare-target').addEventListener('change', plotComparison);
  $('#train-form').addEventListener('submit', (event) => {
    event.preventDefault();
    runTraining();
  });
  $('#train-stop').addEventListener('click', () => trainController?.abort());
  $('#train-log').addEventListener('change', () => {
    redrawTrainChart();
    url.schedule();
  });
  $('#b-enabled').addEventListener('change', () => {
    onRunBToggle();
    url.schedule();
  });
  for (const run of Object.values(runs)) {
    run.fields.example.addEventListener('change', () => {
      run.errors.clear();
      loadExample(run, run.fields.example.value);
      url.schedule();
    });
    run.fields.loss.addEventListener('change', () => renderRunParams(run, 'p'));
    run.fields.activation.addEventListener('change', () => renderRunParams(run, 'ap'));
    run.fields.optimizer.addEventListener('change', () => renderRunParams(run, 'op'));
  }
  // Ctrl/Cmd+Enter in a textarea submits its form (Enter alone adds a line).
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && event.target.matches('textarea')) {
      event.preventDefault();
      event.target.form?.requestSubmit();
    }
  });
  document.addEventListener('input', () => url.schedule());
  document.addEventListener('change', () => url.schedule());
  // The panel being worked in is the panel in the link.
  document.addEventListener('focusin', (event) => {
    const section = event.target.closest?.('.panel');
    if (section && section.dataset.panel !== app.panel) {
      setPanel(section.dataset.panel);
      url.schedule();
    }
  });
  for (const button of $$('[data-goto]')) {
    button.addEventListener('click', () => {
      setPanel(button.dataset.goto, { scroll: true, focus: true });
      url.write();
    });
  }
  $('#permalink-copy').addEventListener('click', async () => {
    url.write();
    const status = $('#permalink-status');
    try {
      await navigator.clipboard.writeText(location.href);
      status.textContent = 'Copied.';
    } catch {
      $('#permalink').select();
      status.textContent = 'Select the link above and copy it (the browser did not allow copying).';
    }
  });
  // A link pasted into this tab changes only the fragment: apply it.
  window.addEventListener('hashchange', () => {
    app.ready = false;
    applyState(url.read());
    app.ready = true;
    url.write();
    computeLoss();
    computeActivation();
    plotComparison();
  });
}

async function start() {
  const status = $('#load-status');
  let catalogue;
  let examples;
  try {
    const [c, e] = await Promise.all([api('/losses'), api('/train/examples')]);
    if (!c.ok) throw new Error(`GET /losses answered ${c.status}: ${c.data.detail ?? c.data.title ?? ''}`);
    catalogue = c.data;
    examples = e.ok && Array.isArray(e.data) ? e.data : [];
  } catch (error) {
    status.textContent = `The playground could not load its catalogue from the service: ${error.message}`;
    status.classList.add('error');
    return;
  }
  app.catalogue = catalogue;
  app.examples = examples;
  const kinds = (catalogue.losses || []).map((k) => k.kind);
  const activations = (catalogue.activations || []).map((a) => a.name);
  const optimizers = (catalogue.optimizers || []).map((o) => o.kind);
  setOptions($('#loss-kind'), kinds);
  setOptions($('#act-loss'), kinds);
  setOptions($('#activation'), activations);
  for (const key of ['a', 'b']) {
    const run = buildRunForm(key);
    setOptions(run.fields.example, examples.map((e) => e.name));
    setOptions(run.fields.loss, kinds);
    setOptions(run.fields.activation, activations);
    setOptions(run.fields.optimizer, optimizers.length ? optimizers : ['sgd']);
  }
  wire();
  applyState(url.read());
  app.ready = true;
  url.write();
  status.textContent = '';
  if (!examples.length) $('#train-status').textContent = 'The service offered no training examples (GET /train/examples).';
  redrawTrainChart();
  await Promise.allSettled([computeLoss(), computeActivation(), plotComparison()]);
  document.body.dataset.ready = 'true';
}

// For the panels in their own scripts (static/landscape.js): run A's /train body as the
// training panel would send it (throws the FieldErrors it would mark), and the keyed fetch.
window.losslab = { trainBody: () => buildTrainBody(runs.a), fetch: keyedFetch };

start();
