// The "Loss landscape" panel in headless Chromium (see run.sh): the textbook example draws
// the l2 and the bce surface with their paths; a click on a surface starts a run from the
// clicked point, whose path is drawn from there and whose final loss is POST /train's for
// that start. On a desktop viewport and on a 390 px wide phone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.LOSSLAB_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOTS = process.env.SCREENSHOT_DIR || '';
const WAIT = { timeout: 60_000 };

let context;
let userDataDir;
let examples;

before(async () => {
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'losslab-chromium-landscape-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const host = new URL(BASE).hostname;
  await context.route((url) => new URL(url.href).hostname !== host && !url.href.startsWith('data:'),
    (route) => route.abort());
  examples = await (await fetch(`${BASE}/landscape/examples`)).json();
});

after(async () => {
  await context?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);
const figure = (page, name) => page.locator(`[data-testid="landscape-figure"][data-name="${name}"]`);

/** /train's answer for an example's path run from `init` (what the panel must show). */
async function trainFrom(example, init) {
  const r = example.request;
  const body = {
    inputs: r.inputs, targets: r.targets, activation: r.activation, loss: r.loss,
    init, ...r.path, trace_every: 0,
  };
  const res = await fetch(`${BASE}/train`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return res.json();
}

/**
 * The picture's geometry, measured in the page: its plot area (picture units), the path's
 * start and end marks (picture units), and the size of one picture unit on the screen.
 */
async function geometry(fig) {
  return fig.locator('svg').evaluate((svg) => {
    const area = svg.querySelector('clipPath rect');
    const num = (el, a) => Number(el.getAttribute(a));
    const start = svg.querySelector('.path-start');
    const end = svg.querySelector('.path-end');
    const ctm = svg.getScreenCTM();
    return {
      left: num(area, 'x'), top: num(area, 'y'), width: num(area, 'width'), height: num(area, 'height'),
      start: start && { x: num(start, 'cx'), y: num(start, 'cy') },
      end: end && { x: num(end, 'x') + 5, y: num(end, 'y') + 5 },
      path: svg.querySelector('.training-path')?.getAttribute('d') || '',
      scale: ctm.a,
      pictureWidth: svg.getBoundingClientRect().width,
    };
  });
}

/** Picture units → parameter values, the axes' first and last grid values as API.md. */
function toValues(g, request, p) {
  const ends = (a) => [a.from, a.from + (a.steps - 1) * (a.to - a.from) / (a.steps - 1)];
  const [x0, x1] = ends(request.x);
  const [y0, y1] = ends(request.y);
  return {
    x: x0 + ((p.x - g.left) / g.width) * (x1 - x0),
    y: y0 + (1 - (p.y - g.top) / g.height) * (y1 - y0),
  };
}

/** One screen pixel in parameter units along each axis. */
function pixel(g, request) {
  return {
    x: (request.x.to - request.x.from) / (g.width * g.scale),
    y: (request.y.to - request.y.from) / (g.height * g.scale),
  };
}

async function openPanel(viewport) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${BASE}/`);
  await page.locator('body[data-ready="true"]').waitFor(WAIT);
  await page.locator('#landscape-form[data-ready="true"]').waitFor(WAIT);
  return { page, errors };
}

async function drawTextbook(page) {
  await byTestId(page, 'landscape-source').selectOption('examples');
  await byTestId(page, 'landscape-draw').click();
  await page.locator('[data-testid="landscape-status"][data-status="done"]').waitFor(WAIT);
}

for (const viewport of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
  const wide = `${viewport.width} px`;

  test(`the textbook example draws the l2 and the bce surface with their paths (${wide})`, async () => {
    assert.deepEqual(examples.map((e) => e.name), ['textbook-neuron-l2', 'textbook-neuron-bce']);
    const { page, errors } = await openPanel(viewport);
    await drawTextbook(page);
    assert.equal(await byTestId(page, 'landscape-figure').count(), 2);
    for (const example of examples) {
      const fig = figure(page, example.name);
      assert.equal(await fig.getAttribute('data-status'), 'done');
      const g = await geometry(fig);
      assert.ok(g.path.startsWith('M'), 'the path is drawn');
      assert.ok(g.path.split('L').length > 20, `a path of many segments: ${g.path.length} chars`);
      // the path starts at the example's init (w = ln 9, b = 0), to a pixel
      const start = toValues(g, example.request, g.start);
      const px = pixel(g, example.request);
      assert.ok(Math.abs(start.x - Math.log(9)) <= px.x, `start w ${start.x}`);
      assert.ok(Math.abs(start.y - 0) <= px.y, `start b ${start.y}`);
      // the run shown is /train's
      const run = await trainFrom(example, example.request.init);
      assert.equal(await byTestId(fig, 'landscape-final-loss').textContent(), String(run.final.loss));
      assert.equal(await byTestId(fig, 'landscape-iterations').textContent(), String(run.iterations));
      assert.equal(await byTestId(fig, 'landscape-stop-reason').textContent(), run.stop_reason);
      const end = toValues(g, example.request, g.end);
      assert.ok(Math.abs(end.x - run.final.weights[0]) <= px.x, `end w ${end.x}`);
      assert.ok(Math.abs(end.y - run.final.bias) <= px.y, `end b ${end.y}`);
      // the picture fits the viewport
      assert.ok(g.pictureWidth <= viewport.width, `picture ${g.pictureWidth} px wide`);
    }
    // the textbook's figure: with the bias trained, l2 stops after 143 updates (API.md)
    assert.equal(await byTestId(figure(page, 'textbook-neuron-l2'), 'landscape-iterations').textContent(), '143');
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= viewport.width, `no sideways scrolling: ${scrollWidth} px`);
    if (SCREENSHOTS) await byTestId(page, 'landscape-pictures').screenshot({ path: path.join(SCREENSHOTS, `landscape-${viewport.width}.png`) });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test(`clicking the surface starts a run from the clicked point and draws its path (${wide})`, async () => {
    const { page, errors } = await openPanel(viewport);
    await drawTextbook(page);
    const example = examples[0];
    const fig = figure(page, example.name);
    const before = await geometry(fig);
    // the screen point of (w, b) = (3.3, -2.6) on the l2 picture
    const want = { x: 3.3, y: -2.6 };
    const r = example.request;
    await fig.locator('svg').scrollIntoViewIfNeeded();
    const onScreen = await fig.locator('svg').evaluate((svg, { want, r, g }) => {
      const ux = g.left + ((want.x - r.x.from) / (r.x.to - r.x.from)) * g.width;
      const uy = g.top + (1 - (want.y - r.y.from) / (r.y.to - r.y.from)) * g.height;
      const p = new DOMPoint(ux, uy).matrixTransform(svg.getScreenCTM());
      return { x: p.x, y: p.y };
    }, { want, r, g: before });
    assert.ok(Number.isFinite(onScreen.x) && Number.isFinite(onScreen.y));
    await page.mouse.click(onScreen.x, onScreen.y);
    await page.locator('[data-testid="landscape-status"][data-status="done"]', { hasText: 'clicked point' }).waitFor(WAIT);
    await fig.locator('[data-testid="landscape-start"]', { hasText: '3.' }).waitFor(WAIT);
    const start = byTestId(fig, 'landscape-start');
    const sx = Number(await start.getAttribute('data-x'));
    const sy = Number(await start.getAttribute('data-y'));
    const after = await geometry(fig);
    const px = pixel(after, r);
    // the run starts where the click was, to a pixel of the screen
    assert.ok(Math.abs(sx - want.x) <= px.x, `clicked w ${sx}, wanted ${want.x} ± ${px.x}`);
    assert.ok(Math.abs(sy - want.y) <= px.y, `clicked b ${sy}, wanted ${want.y} ± ${px.y}`);
    // the new path is drawn from that point (its start mark, to the picture's 0.1 unit)
    assert.notEqual(after.path, before.path);
    const drawn = toValues(after, r, after.start);
    assert.ok(Math.abs(drawn.x - sx) <= px.x, `drawn start w ${drawn.x} vs ${sx}`);
    assert.ok(Math.abs(drawn.y - sy) <= px.y, `drawn start b ${drawn.y} vs ${sy}`);
    // and the run shown is /train's from exactly the clicked values
    const run = await trainFrom(example, { weights: [sx], bias: sy });
    assert.equal(await byTestId(fig, 'landscape-final-loss').textContent(), String(run.final.loss));
    assert.equal(await byTestId(fig, 'landscape-iterations').textContent(), String(run.iterations));
    assert.ok(run.final.loss < example.request.path.stop.loss_below, `converged: ${run.final.loss}`);
    const end = toValues(after, r, after.end);
    assert.ok(Math.abs(end.x - run.final.weights[0]) <= px.x && Math.abs(end.y - run.final.bias) <= px.y);
    // the other picture is untouched
    const other = byTestId(figure(page, examples[1].name), 'landscape-start');
    assert.equal(await other.getAttribute('data-x'), String(Math.log(9)));
    if (SCREENSHOTS) await byTestId(page, 'landscape-pictures').screenshot({ path: path.join(SCREENSHOTS, `landscape-click-${viewport.width}.png`) });
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('the training panel set-up is drawn, and a bad axis is reported, not drawn', async () => {
  const { page, errors } = await openPanel({ width: 1280, height: 900 });
  await byTestId(page, 'landscape-source').selectOption('train');
  await byTestId(page, 'landscape-x-parameter').fill('/weights/7');
  await byTestId(page, 'landscape-draw').click();
  const status = page.locator('[data-testid="landscape-status"][data-status="error"]');
  await status.waitFor(WAIT);
  assert.match(await status.textContent(), /\/x\/parameter/);
  await byTestId(page, 'landscape-x-parameter').fill('/weights/0');
  await byTestId(page, 'landscape-draw').click();
  await page.locator('[data-testid="landscape-status"][data-status="done"]').waitFor(WAIT);
  const fig = figure(page, 'training-panel-run-a');
  const g = await geometry(fig);
  assert.ok(g.path.startsWith('M'));
  assert.match(await byTestId(fig, 'landscape-final-loss').textContent(), /^[0-9.e+-]+$/);
  assert.deepEqual(errors, []);
  await page.close();
});
