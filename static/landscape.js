// "Loss landscape": the loss surface of a /train set-up over two of its parameters, drawn
// by the service (POST /landscape with Accept: image/svg+xml), with the path of the run.
// The set-up is one of GET /landscape/examples (the textbook neuron under l2 and under
// bce, side by side) or the training panel's run A. Clicking a point on a picture maps
// the click to parameter values through the picture's own plot area and axis ranges,
// starts a run from there (init = that point) and redraws the picture with its path;
// the run's figures are POST /train's answer for the same run. Nothing is computed here
// but that mapping.

const $ = (id) => document.getElementById(id);

const MODEL_FIELDS = ['inputs', 'targets', 'activation', 'activation_params', 'loss', 'params', 'init', 'use_bias'];
const PATH_FIELDS = ['learning_rate', 'optimizer', 'batch_size', 'seed', 'max_iterations', 'stop', 'trace_every'];
const SVG = 'image/svg+xml';

let examples = [];
let pictures = 0;
let drawController = null;

/** POST with the playground's keyed fetch (class servers) when it is there. */
function post(path, body, accept, signal) {
  const f = window.losslab?.fetch ?? ((p, init) => fetch(p, init));
  return f(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: accept },
    body: JSON.stringify(body),
    signal,
  });
}

/** The problem+json of a failed answer, as one line. */
async function problemText(res) {
  const text = await res.text();
  try {
    const p = JSON.parse(text);
    const where = (p.errors || []).map((e) => `${e.field || ''}: ${e.message || ''}`).join('; ');
    return `${p.title || res.status}${p.detail ? ` — ${p.detail}` : ''}${where ? ` (${where})` : ''}`;
  } catch {
    return `${res.status}: ${text.slice(0, 200)}`;
  }
}

function setStatus(text, state) {
  const s = $('landscape-status');
  s.textContent = text;
  s.dataset.status = state;
}

// ---------------------------------------------------------------------------------------
// The set-ups

function fillSources() {
  const select = $('landscape-source');
  const option = (value, text) => {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    return o;
  };
  const list = [];
  if (examples.length > 1) list.push(option('examples', `All ${examples.length} examples side by side (${examples.map((e) => e.name).join(', ')})`));
  for (const e of examples) list.push(option(`example:${e.name}`, `Example: ${e.name}`));
  list.push(option('train', "The training panel's run A"));
  select.replaceChildren(...list);
}

function chosenExamples() {
  const v = $('landscape-source').value;
  if (v === 'examples') return examples;
  if (v.startsWith('example:')) return examples.filter((e) => e.name === v.slice('example:'.length));
  return [];
}

/** An example's axes into the form. */
function showAxes() {
  const [first] = chosenExamples();
  if (!first) return;
  for (const name of ['x', 'y']) {
    const a = first.request[name];
    $(`landscape-${name}-parameter`).value = a.parameter;
    $(`landscape-${name}-from`).value = String(a.from);
    $(`landscape-${name}-to`).value = String(a.to);
  }
  $('landscape-steps').value = String(first.request.x.steps);
}

function number(id) {
  const text = $(id).value.trim();
  const v = Number(text);
  if (text === '' || !Number.isFinite(v)) throw new Error(`${$(id).labels[0]?.textContent || id}: "${text}" is not a number`);
  return v;
}

/** The axes as typed. */
function axes() {
  const steps = Number($('landscape-steps').value);
  if (!Number.isInteger(steps) || steps < 2) throw new Error('Grid steps: an integer ≥ 2');
  const axis = (name) => ({
    parameter: $(`landscape-${name}-parameter`).value.trim(),
    from: number(`landscape-${name}-from`),
    to: number(`landscape-${name}-to`),
    steps,
  });
  return { x: axis('x'), y: axis('y') };
}

/** The /landscape requests to draw: [{name, description, request}]. */
function setups() {
  const { x, y } = axes();
  if ($('landscape-source').value === 'train') {
    if (!window.losslab?.trainBody) throw new Error('The training panel is not ready yet.');
    let body;
    try {
      body = window.losslab.trainBody();
    } catch (e) {
      throw new Error(e.list ? `The training panel has inputs to fix: ${e.list.map((i) => i.message).join(' ')}` : String(e.message || e));
    }
    const request = { x, y, path: {} };
    for (const k of MODEL_FIELDS) if (body[k] !== undefined) request[k] = body[k];
    for (const k of PATH_FIELDS) if (body[k] !== undefined) request.path[k] = body[k];
    return [{ name: 'training-panel-run-a', description: "The training panel's run A.", request }];
  }
  return chosenExamples().map((e) => ({
    name: e.name,
    description: e.description,
    request: { ...structuredClone(e.request), x, y },
  }));
}

// ---------------------------------------------------------------------------------------
// Setting one parameter of init (the shapes of API.md's /train)

function copyOrFill(value, length, fill) {
  if (Array.isArray(value)) return structuredClone(value);
  return Array.from({ length }, () => (typeof value === 'number' ? value : fill));
}

/** `init` with the number `pointer` names (as /landscape's axes name it) set to `value`. */
function initWith(request, pointer, value) {
  const init = structuredClone(request.init || {});
  const [, root, i, j] = pointer.split('/');
  const rows = request.inputs.length ? request.inputs : [[0]];
  const n = Array.isArray(rows[0]) ? rows[0].length : 1;
  const w = init.weights;
  const k = Array.isArray(request.targets[0]) ? request.targets[0].length
    : Array.isArray(w) && Array.isArray(w[0]) ? w[0].length
      : Array.isArray(init.bias) ? init.bias.length : 1;
  if (root === 'weights' && j === undefined) { // flat targets: weights [n]
    const weights = copyOrFill(w, n, 0);
    if (Array.isArray(weights[+i])) weights[+i][0] = value;
    else weights[+i] = value;
    init.weights = weights;
  } else if (root === 'weights') { // weights [n][k] (or [k] when n = 1)
    let weights = Array.isArray(w) ? structuredClone(w) : null;
    if (weights && !Array.isArray(weights[0])) weights = [weights];
    if (!weights) weights = Array.from({ length: n }, () => copyOrFill(w, k, 0));
    weights[+i][+j] = value;
    init.weights = weights;
  } else if (j === undefined && i === undefined) { // the bias, a number
    init.bias = value;
  } else {
    const bias = copyOrFill(init.bias, k, 0);
    bias[+i] = value;
    init.bias = bias;
  }
  return init;
}

/** The value of the number `pointer` names in init (for the caption); undefined if absent. */
function initValue(request, pointer) {
  const init = request.init || {};
  const [, root, i, j] = pointer.split('/');
  let v = root === 'weights' ? init.weights : init.bias;
  if (v === undefined) return 0;
  for (const idx of [i, j]) {
    if (idx === undefined || !Array.isArray(v)) break;
    v = v[+idx];
  }
  if (Array.isArray(v)) v = v[0];
  return typeof v === 'number' ? v : undefined;
}

// ---------------------------------------------------------------------------------------
// Pictures

/** The service's SVG as a node of this page, its ids made unique (two pictures share a page). */
function importSvg(text) {
  const n = ++pictures;
  const unique = text.replace(/\b(plot-area|landscape-title|landscape-desc)\b/g, `$1-${n}`);
  const doc = new DOMParser().parseFromString(unique, SVG);
  if (doc.querySelector('parsererror') || doc.documentElement.localName !== 'svg') {
    throw new Error('the picture is not valid SVG');
  }
  return document.importNode(doc.documentElement, true);
}

/** An axis's first and last grid values, as the service computes them (API.md). */
function axisEnds(a) {
  return [a.from, a.from + (a.steps - 1) * (a.to - a.from) / (a.steps - 1)];
}

/** The parameter values under a click, or null outside the plot area. */
function clickToValues(svg, request, clientX, clientY) {
  const area = svg.querySelector('clipPath rect');
  const ctm = svg.getScreenCTM();
  if (!area || !ctm) return null;
  const p = new DOMPoint(clientX, clientY).matrixTransform(ctm.inverse());
  const [left, top] = [Number(area.getAttribute('x')), Number(area.getAttribute('y'))];
  const [width, height] = [Number(area.getAttribute('width')), Number(area.getAttribute('height'))];
  const tx = (p.x - left) / width;
  const ty = 1 - (p.y - top) / height; // y grows upwards in the picture
  if (!(tx >= 0 && tx <= 1 && ty >= 0 && ty <= 1)) return null;
  const [x0, x1] = axisEnds(request.x);
  const [y0, y1] = axisEnds(request.y);
  return { x: x0 + tx * (x1 - x0), y: y0 + ty * (y1 - y0) };
}

function row(dl, label, testid) {
  const dt = document.createElement('dt');
  dt.textContent = label;
  const dd = document.createElement('dd');
  const out = document.createElement('output');
  out.setAttribute('data-testid', testid);
  dd.append(out);
  dl.append(dt, dd);
  return out;
}

/** One figure: the picture, what it shows, and the run drawn on it. */
function makeFigure(setup) {
  const figure = document.createElement('figure');
  figure.className = 'landscape-figure';
  figure.setAttribute('data-testid', 'landscape-figure');
  figure.dataset.name = setup.name;
  const holder = document.createElement('div');
  holder.setAttribute('data-testid', 'landscape-picture');
  const caption = document.createElement('figcaption');
  const text = document.createElement('p');
  text.textContent = setup.description;
  const dl = document.createElement('dl');
  const outputs = {
    start: row(dl, 'run from (x, y)', 'landscape-start'),
    stop: row(dl, 'stop reason', 'landscape-stop-reason'),
    iterations: row(dl, 'iterations', 'landscape-iterations'),
    loss: row(dl, 'final loss', 'landscape-final-loss'),
  };
  caption.append(text, dl);
  figure.append(holder, caption);
  figure.landscape = { setup, holder, outputs, controller: null };
  holder.addEventListener('click', (event) => {
    const svg = holder.querySelector('svg');
    if (!svg) return;
    const v = clickToValues(svg, figure.landscape.setup.request, event.clientX, event.clientY);
    if (!v) return;
    runFrom(figure, v);
  });
  return figure;
}

/** The /train body of the path's run from the request's init (no trace: only the end is shown). */
function trainBody(request) {
  const body = {};
  for (const k of MODEL_FIELDS) if (request[k] !== undefined) body[k] = request[k];
  Object.assign(body, request.path, { trace_every: 0 });
  return body;
}

/** Draws the figure's request, and shows its run's end from POST /train. */
async function render(figure, signal) {
  const { setup, holder, outputs } = figure.landscape;
  const r = setup.request;
  figure.dataset.status = 'busy';
  const pictureRes = post('/landscape', r, SVG, signal);
  const runRes = r.path ? post('/train', trainBody(r), 'application/json', signal) : null;
  const res = await pictureRes;
  if (!res.ok) throw new Error(`${setup.name}: ${await problemText(res)}`);
  const svg = importSvg(await res.text());
  holder.replaceChildren(svg);
  const sx = initValue(r, r.x.parameter);
  const sy = initValue(r, r.y.parameter);
  outputs.start.textContent = `(${sx}, ${sy})`;
  outputs.start.dataset.x = String(sx);
  outputs.start.dataset.y = String(sy);
  for (const o of [outputs.stop, outputs.iterations, outputs.loss]) o.textContent = r.path ? '…' : 'no path';
  if (runRes) {
    const run = await runRes;
    if (!run.ok) throw new Error(`${setup.name}: ${await problemText(run)}`);
    const data = await run.json();
    outputs.stop.textContent = data.stop_reason;
    outputs.iterations.textContent = String(data.iterations);
    outputs.loss.textContent = String(data.final.loss);
  }
  figure.dataset.status = 'done';
}

/** A click: a run from that point, drawn on the same surface. */
async function runFrom(figure, v) {
  const state = figure.landscape;
  const r = state.setup.request;
  const request = { ...r, init: initWith(r, r.x.parameter, v.x) };
  request.init = initWith(request, r.y.parameter, v.y);
  if (!request.path) request.path = { learning_rate: 0.1, max_iterations: 1000 };
  state.setup = { ...state.setup, request };
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  setStatus(`${state.setup.name}: a run from (${v.x}, ${v.y})…`, 'busy');
  try {
    await render(figure, controller.signal);
    if (state.controller === controller) setStatus(`${state.setup.name}: the path from the clicked point is drawn.`, 'done');
  } catch (e) {
    if (e.name !== 'AbortError') {
      figure.dataset.status = 'error';
      setStatus(String(e.message || e), 'error');
    }
  }
}

async function draw(event) {
  event?.preventDefault();
  let list;
  try {
    list = setups();
  } catch (e) {
    setStatus(String(e.message || e), 'error');
    return;
  }
  if (!list.length) {
    setStatus('No set-up to draw: the service offered no examples (GET /landscape/examples).', 'error');
    return;
  }
  drawController?.abort();
  const controller = new AbortController();
  drawController = controller;
  const figures = list.map(makeFigure);
  $('landscape-pictures').replaceChildren(...figures);
  setStatus('Drawing…', 'busy');
  try {
    await Promise.all(figures.map((f) => render(f, controller.signal)));
    if (drawController === controller) setStatus('Click a point on a picture to start a run from there.', 'done');
  } catch (e) {
    if (e.name !== 'AbortError') setStatus(String(e.message || e), 'error');
  }
}

async function init() {
  if (!$('landscape-form')) return;
  try {
    const get = window.losslab?.fetch ?? ((p, i) => fetch(p, i));
    const res = await get('/landscape/examples', { headers: { Accept: 'application/json' } });
    examples = res.ok ? await res.json() : [];
  } catch {
    examples = [];
  }
  fillSources();
  showAxes();
  $('landscape-source').addEventListener('change', showAxes);
  $('landscape-form').addEventListener('submit', draw);
  $('landscape-form').dataset.ready = 'true';
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
