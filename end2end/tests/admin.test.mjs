// The seller's support day in a real browser: create a product and upload its file (the
// progress bar shows), sell it by hand, the buyer downloads, a second country blocks the
// link, the password desk finds it by password, order ID and order number with both
// countries, unblocks, resets, sends a new password to another address, and a refund makes
// the buyer page refuse. Screenshots of each main screen go to end2end/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { startServer, startBrowser, watchErrors, hydrated, screenshotDir, firstAdmin, EMAIL, PASSWORD } from './harness.mjs';

const US_IP = '8.8.8.8';
const GB_IP = '81.2.69.142';

async function shot(page, name) {
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}

/** The buyer's browser behind a proxy: the server trusts 127.0.0.1 for X-Forwarded-For. */
async function fetchAs(url, ip, range) {
  const headers = { 'x-forwarded-for': ip };
  if (range) headers.range = range;
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return response.status;
}

test('seller: product, upload, order, country block, desk, new password, refund', async (t) => {
  const server = await startServer(['--trusted-proxy', '127.0.0.1/32'], { apiToken: true });
  t.after(() => server.stop());
  const browser = await startBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  const dir = mkdtempSync(join(tmpdir(), 'dropgate-upload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Large enough that the progress bar is on screen for a while on loopback.
  const content = Buffer.alloc(160 * 1024 * 1024, 'dropgate ');
  const sha256 = createHash('sha256').update(content).digest('hex');
  const filePath = join(dir, 'field-guide.pdf');
  writeFileSync(filePath, content);

  await firstAdmin(page, server);
  await hydrated(page);

  // 1. A product, made in the browser; the ID is checked while typing.
  await page.getByRole('link', { name: 'Products' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/products`);
  const form = page.getByRole('form', { name: 'New product' });
  await form.locator('input[name="name"]').fill('The Field Guide');
  await form.locator('input[name="product_id"]').fill('Field Guide');
  await form.getByText('is not a product id').waitFor();
  await form.locator('input[name="product_id"]').fill('field-guide');
  await form.locator('input[name="max_downloads"]').fill('3');
  await form.locator('input[name="download_days"]').fill('0');
  await shot(page, 'products');
  await form.getByRole('button', { name: 'Create product' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/products/field-guide`);
  await page.getByRole('heading', { name: 'The Field Guide' }).waitFor();

  // 2. Upload with a visible progress bar, then the file with its SHA-256.
  await page.locator('input[type="file"]').setInputFiles(filePath);
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  await page.locator('progress').waitFor({ state: 'visible' });
  await shot(page, 'product-upload-progress');
  const outcome = await Promise.race([
    page.getByText('field-guide.pdf is uploaded.').waitFor({ timeout: 120000 }).then(() => 'uploaded'),
    page.locator('.upload .notice.error').waitFor({ timeout: 120000 }).then(() => page.locator('.upload .notice.error').textContent()),
  ]);
  assert.equal(outcome, 'uploaded', `upload failed; server log:\n${server.output().slice(-2000)}`);
  await page.getByText(sha256).waitFor();
  await shot(page, 'product');

  // 3. An order by hand; its link is shown once.
  await page.getByRole('link', { name: 'Orders' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/orders`);
  const orderForm = page.getByRole('form', { name: 'New order' });
  await orderForm.locator('input[name="email"]').fill('not-an-email');
  await orderForm.locator('label', { hasText: "Buyer's email" }).locator('.field-error').waitFor();
  await orderForm.locator('input[name="email"]').fill('buyer@example.com');
  await orderForm.locator('input[name="name"]').fill('Bea Buyer');
  await orderForm.getByLabel(/The Field Guide/).check();
  await orderForm.getByRole('button', { name: 'Create order' }).click();
  const issuedUrl = page.locator('.issued-url').first();
  await issuedUrl.waitFor();
  const link = await issuedUrl.getAttribute('href');
  const password = (await page.locator('.issued-password').first().textContent()).trim();
  const orderId = link && (await page.getByText(/^Order \d{7} is created/).textContent()).match(/\d{7}/)[0];
  assert.ok(link.includes('/d/'), link);
  await page.getByRole('cell', { name: 'buyer@example.com' }).waitFor();
  await shot(page, 'orders');

  // 4. The buyer downloads from the US, then the link is tried from Great Britain.
  const product = await server.api('GET', '/api/v1/products/field-guide');
  const fileUrl = `${link}/${product.files[0].file_id}`;
  assert.equal(await fetchAs(fileUrl, US_IP, 'bytes=0-1023'), 206);
  assert.equal(await fetchAs(fileUrl, GB_IP, 'bytes=0-1023'), 403);

  // 5. The desk finds it by password and shows both countries.
  await page.getByRole('link', { name: 'Password desk' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/desk`);
  const search = page.getByRole('search', { name: 'Find a link' });
  await search.locator('select[name="by"]').selectOption('password');
  await search.locator('input[name="q"]').fill(password.toLowerCase());
  await search.getByRole('button', { name: 'Find' }).click();
  const card = page.locator('article.grant').first();
  await card.locator('[data-state="blocked"]').first().waitFor();
  await card.locator('.first-country', { hasText: 'US' }).filter({ hasText: US_IP }).waitFor();
  await card.locator('.second-country', { hasText: 'GB' }).filter({ hasText: GB_IP }).waitFor();
  await card.getByRole('cell', { name: GB_IP }).first().waitFor();
  // The flag is decoration: screen readers skip it, and where this system's fonts have no
  // flag glyphs (measured by the app at start) it is hidden and the code stands alone.
  const flags = await page.evaluate(() => {
    const probe = document.createElement('canvas').getContext('2d');
    probe.font = '32px sans-serif';
    const glyphs = probe.measureText('\u{1F1E9}\u{1F1EA}').width <= 1.5 * probe.measureText('\u{1F1E9}').width;
    const shown = document.querySelector('.first-country').innerText;
    return { glyphs, marked: document.documentElement.classList.contains('no-flag-glyphs'), shown,
      hidden: [...document.querySelectorAll('.flag')].every((f) => f.getAttribute('aria-hidden') === 'true') };
  });
  assert.equal(flags.marked, !flags.glyphs, JSON.stringify(flags));
  assert.ok(flags.hidden, 'flags are hidden from screen readers');
  assert.match(flags.shown, /US/);
  if (flags.marked) assert.ok(!/[\u{1F1E6}-\u{1F1FF}]/u.test(flags.shown), `no stray regional letters: ${flags.shown}`);
  await shot(page, 'desk-blocked');

  // ...and by order ID and by order number (the address keeps the search: back works).
  await search.locator('select[name="by"]').selectOption('order_id');
  await search.locator('input[name="q"]').fill(orderId);
  await search.getByRole('button', { name: 'Find' }).click();
  await page.waitForURL(/by=order_id/);
  await page.locator('article.grant .second-country', { hasText: 'GB' }).waitFor();
  const order = await server.api('GET', `/api/v1/orders/${orderId}`);
  await search.locator('select[name="by"]').selectOption('order_number');
  await search.locator('input[name="q"]').fill(order.order_number);
  await search.getByRole('button', { name: 'Find' }).click();
  await page.waitForURL(/by=order_number/);
  await page.locator('article.grant .first-country', { hasText: 'US' }).waitFor();
  await page.goBack();
  await page.waitForURL(/by=order_id/);
  await page.locator('article.grant').first().waitFor();

  // 6. Unblock: the buyer downloads again; reset: a fresh period.
  const desk = page.locator('article.grant').first();
  await desk.getByRole('button', { name: 'Unblock…' }).click();
  await desk.getByText('Lift the block and the country lock').waitFor();
  await desk.getByRole('button', { name: 'Yes, unblock' }).click();
  await desk.locator('[data-state="active"]').first().waitFor();
  assert.equal(await fetchAs(fileUrl, GB_IP, 'bytes=0-1023'), 206);
  await desk.getByRole('button', { name: 'Reset…' }).click();
  await desk.getByRole('button', { name: 'Yes, reset' }).click();
  await desk.getByText('Reset: a fresh period starts now.').waitFor();
  await desk.locator('.locked', { hasText: 'not locked yet' }).waitFor();

  // 7. A new password for another address (a mistyped email).
  const send = page.getByRole('form', { name: 'Send a new password' });
  await send.locator('select[name="product_id"]').selectOption('field-guide');
  await send.locator('input[name="email"]').fill('bea.buyer@example.org');
  await send.getByRole('button', { name: 'Send new password' }).click();
  const complimentary = page.locator('section', { has: send }).locator('.issued-url').first();
  await complimentary.waitFor();
  const giftLink = await complimentary.getAttribute('href');
  const giftPage = await fetch(giftLink);
  assert.equal(giftPage.status, 200);
  assert.match(await giftPage.text(), /The Field Guide/);
  await shot(page, 'desk');

  // 8. Refund from the order page (a deep link that renders on the server first).
  await page.goto(`${server.baseUrl}/admin/orders/${orderId}`);
  await hydrated(page);
  await page.getByRole('heading', { name: `Order ${orderId}` }).waitFor();
  await page.getByRole('button', { name: 'Refund…' }).click();
  await page.getByText('revoke every link').waitFor();
  await page.getByRole('button', { name: 'Yes, refund' }).click();
  await page.locator('h1 [data-state="refunded"]').waitFor();
  await shot(page, 'order');
  const buyer = await browser.newPage();
  await buyer.goto(link);
  await buyer.getByText('This order was refunded').waitFor();
  await buyer.close();
  assert.equal(await fetchAs(fileUrl, US_IP, 'bytes=0-1023'), 403);

  // 9. Activity, audit log and the dashboard chart show what happened.
  await page.getByRole('link', { name: 'Activity' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/activity`);
  await page.getByRole('cell', { name: 'blocked: second country' }).first().waitFor();
  await shot(page, 'activity');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/audit`);
  await page.getByRole('cell', { name: 'grant.unblock' }).waitFor();
  await page.getByRole('cell', { name: 'order.update' }).first().waitFor();
  await shot(page, 'audit');
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await page.locator('svg.bars rect.bar-ok').first().waitFor({ state: 'attached' });
  await shot(page, 'dashboard-chart');

  // A phone-width look at the desk.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${server.baseUrl}/admin/desk?by=order_id&q=${orderId}`);
  await hydrated(page);
  await page.locator('article.grant').first().waitFor();
  await shot(page, 'desk-phone');
  assert.deepEqual(errors, [], 'no console errors');
});

test('settings: store, API tokens, staff accounts and the own password, by keyboard', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const browser = await startBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await firstAdmin(page, server);
  await hydrated(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/settings`);

  // 1. Store settings validate while typing, save, and show on the buyer pages.
  const field = (name) => page.locator(`input[name="${name}"]`);
  await field('store_name').fill('Pixel Fonts');
  await field('reset_days').fill('0');
  await page.getByText('A reset gives between 1 and 3650 days.').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Save settings' }).isDisabled());
  await field('reset_days').fill('14');
  await field('sender_email').fill('sales@pixel');
  await page.getByText('must be a domain name').waitFor();
  await field('sender_email').fill('sales@pixel.example');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('Settings saved.').waitFor();
  const buyerPage = await (await fetch(`${server.baseUrl}/d/AAAA-BBBB-CCCC`)).text();
  assert.match(buyerPage, /Pixel Fonts/);

  // 2. An API token: shown once, works, and stops working when revoked.
  await field('token_name').fill('Shop');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.locator('.token-secret').textContent()).trim();
  assert.ok(secret.length > 30, secret);
  const api = () => fetch(`${server.baseUrl}/api/v1/products`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal((await api()).status, 200);
  await page.getByRole('row', { name: /Shop/ }).getByRole('button', { name: 'Revoke…' }).click();
  await page.getByText('stop working at once').waitFor();
  await page.getByRole('button', { name: 'Yes, revoke' }).click();
  await page.getByRole('row', { name: /Shop/ }).getByText(/^revoked/).waitFor();
  assert.equal((await api()).status, 401);

  // 3. A second admin: the password rule shows while typing; added, then removed.
  await field('email').fill('helper@example.com');
  await page.locator('form[aria-label="Add an admin"] input[name="password"]').fill('short');
  await page.getByText('use at least 12 characters').waitFor();
  await page.locator('form[aria-label="Add an admin"] input[name="password"]').fill('helper passphrase 1');
  await page.getByRole('button', { name: 'Add admin' }).click();
  await page.getByText('helper@example.com can now sign in').waitFor();
  const helperRow = page.getByRole('row', { name: /helper@example.com/ });
  await helperRow.getByRole('button', { name: 'Remove…' }).click();
  await page.getByRole('button', { name: 'Yes, remove' }).click();
  await helperRow.waitFor({ state: 'detached' });
  await shot(page, 'settings');

  // 4. The own password, with the keyboard only: Tab between fields, Enter submits.
  await field('current').focus();
  await page.keyboard.type('not my password');
  await page.keyboard.press('Tab');
  await page.keyboard.type('a fresh passphrase');
  await page.keyboard.press('Tab');
  await page.keyboard.type('a fresh passphrase');
  await page.keyboard.press('Enter');
  await page.getByText('This is not your current password.').waitFor();
  await field('current').fill('');
  await field('current').focus();
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByText('Password changed.').waitFor();
  // This session continues; the new password signs in elsewhere.
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('cell', { name: 'admin.password' }).waitFor();
  const other = await browser.newPage();
  await other.goto(`${server.baseUrl}/admin/login`);
  await hydrated(other);
  await other.getByLabel('Email').fill(EMAIL);
  await other.getByLabel('Password').fill('a fresh passphrase');
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.waitForURL(`${server.baseUrl}/admin`);
  await other.close();
  assert.deepEqual(errors, [], 'no console errors');
});
