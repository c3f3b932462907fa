// First run in a real browser: the one-time setup link creates the first admin, sign-out and
// sign-in work, the dashboard shows figures from the store, and navigating inside the admin
// does not reload the page.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, startBrowser, watchErrors, hydrated, screenshotDir } from './harness.mjs';

const EMAIL = 'owner@example.com';
const PASSWORD = 'correct horse battery staple';

test('first run: setup link, sign out, sign in, dashboard, client-side navigation', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const browser = await startBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = watchErrors(page);

  assert.ok(server.setupLink, `the server printed a setup link:\n${server.output()}`);

  // 1. The setup link creates the first admin and signs them in.
  await page.goto(server.setupLink);
  await hydrated(page);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Your name').fill('Olivia Owner');
  // The server's answer appears next to the field it is about.
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.getByLabel('Password again').fill('a different passphrase');
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await page.locator('label', { hasText: 'Password again' }).getByText('the two passwords are not the same').waitFor();
  await page.screenshot({ path: join(screenshotDir, 'setup.png'), fullPage: true });
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await page.waitForURL(`${server.baseUrl}/admin`);
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await page.getByText('Olivia Owner').waitFor();

  // 2. Sign out.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/login`);
  await hydrated(page);

  // The setup link works once only.
  const second = await browser.newPage();
  await second.goto(server.setupLink);
  await second.getByText('already been used').waitFor();
  await second.close();

  // 3. A wrong password is refused with the same message as an unknown email.
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('wrong password here');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Wrong email or password.').waitFor();
  await page.screenshot({ path: join(screenshotDir, 'login-refused.png'), fullPage: true });

  // 4. Sign in.
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${server.baseUrl}/admin`);

  // 5. The dashboard shows figures read from the store.
  const figure = (label) => page.locator('.figure', { has: page.locator('dt', { hasText: label }) }).locator('dd');
  await figure('Staff accounts').waitFor();
  assert.equal(await figure('Staff accounts').textContent(), '1');
  assert.ok(Number(await figure('Signed-in sessions').textContent()) >= 1);
  assert.equal(await figure('Active API tokens').textContent(), '0');
  assert.match(await figure('Database size').textContent(), /\d+(\.\d)? (KiB|MiB)/);
  await page.screenshot({ path: join(screenshotDir, 'dashboard.png'), fullPage: true });

  // 6. Navigation inside the admin happens without a full page load.
  await page.evaluate(() => { window.__sameDocument = 'yes'; });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/settings`);
  await page.getByRole('heading', { name: 'Staff accounts' }).waitFor();
  await page.getByRole('cell', { name: EMAIL }).waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'navigation reloaded the page');
  await page.screenshot({ path: join(screenshotDir, 'settings-first-run.png'), fullPage: true });
  await page.goBack();
  await page.waitForURL(`${server.baseUrl}/admin`);
  await figure('Staff accounts').waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'back button reloaded the page');

  // 7. A phone-width screen still shows the navigation and the figures.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(screenshotDir, 'dashboard-phone.png'), fullPage: true });

  assert.deepEqual(errors, [], 'no console errors (CSP violations, panics)');
});

test('the WASM bundle, embedded only gzipped, reaches clients with and without gzip', async (t) => {
  const { get } = await import('node:http');
  const { gunzipSync } = await import('node:zlib');
  const server = await startServer();
  t.after(() => server.stop());
  const raw = (encoding) => new Promise((resolve, reject) => {
    get(`${server.baseUrl}/pkg/dropgate_bg.wasm`, { headers: { 'accept-encoding': encoding } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
  const gzipped = await raw('gzip');
  assert.equal(gzipped.status, 200);
  assert.equal(gzipped.headers['content-encoding'], 'gzip');
  const plain = await raw('identity');
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers['content-type'], 'application/wasm');
  assert.deepEqual(plain.body.subarray(0, 4), Buffer.from([0, 0x61, 0x73, 0x6d]), 'a WASM module');
  assert.ok(gunzipSync(gzipped.body).equals(plain.body), 'the same bytes either way');
  assert.equal(plain.headers.etag, gzipped.headers.etag);
});
