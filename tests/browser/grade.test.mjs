// The "Check my answer" panel in headless Chromium (see run.sh): a learner types the
// textbook's ½·MSE for an mse task and the service names half_factor. The typed value is
// the service's own /loss/l2 answer for the same inputs, fetched by this test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.LOSSLAB_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = { timeout: 60_000 };

let context;
let userDataDir;

before(async () => {
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'losslab-chromium-grade-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const host = new URL(BASE).hostname;
  await context.route((url) => new URL(url.href).hostname !== host && !url.href.startsWith('data:'),
    (route) => route.abort());
});

after(async () => {
  await context?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);

test('typing the textbook ½·MSE for an mse task shows half_factor', async () => {
  const inputs = { predictions: [0.5, 2, -1], targets: [1, 0, -1.5] };
  const res = await fetch(`${BASE}/loss/l2`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(inputs),
  });
  const half = (await res.json()).loss;
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${BASE}/`);
  await page.locator('body[data-ready="true"]').waitFor(WAIT);
  await byTestId(page, 'loss-kind').selectOption('mse');
  await byTestId(page, 'reduction').selectOption('mean');
  await byTestId(page, 'predictions').fill('0.5, 2, -1');
  await byTestId(page, 'targets').fill('[1, 0, -1.5]');
  await byTestId(page, 'grade-task').selectOption('loss');
  await byTestId(page, 'grade-field').selectOption('loss');
  await byTestId(page, 'grade-answer').fill(String(half));
  await byTestId(page, 'grade-check').click();
  await page.locator('[data-testid="grade-status"][data-status="failed"]').waitFor(WAIT);
  const mistake = byTestId(page, 'grade-mistake').first();
  await mistake.waitFor(WAIT);
  assert.match(await mistake.textContent(), /half_factor/);
  assert.match(await byTestId(page, 'grade-feedback').textContent(), /half/);
  // the right value passes
  await byTestId(page, 'grade-answer').fill('1.5');
  await byTestId(page, 'grade-check').click();
  await page.locator('[data-testid="grade-status"][data-status="passed"]').waitFor(WAIT);
  assert.equal(await byTestId(page, 'grade-mistake').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});
