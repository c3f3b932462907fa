// Payments in a real browser: the seller sets a provider's signing secret, maps a
// product, sees a signed notification arrive with its order, reprocesses one that named
// an unmapped product, and adds a webhook endpoint whose delivery shows up as delivered.
// Pages are loaded the way people do: full loads and reloads.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { startServer, startBrowser, watchErrors, hydrated, screenshotDir, firstAdmin } from './harness.mjs';

const SECRET = 'ls_signing_secret_for_the_test';

/** A Lemon Squeezy order notification, signed as Lemon Squeezy signs it. */
async function lemonSqueezy(server, { order, variant, email }) {
  const body = JSON.stringify({
    meta: { event_name: 'order_created' },
    data: {
      type: 'orders', id: order,
      attributes: { status: 'paid', user_email: email, user_name: 'Lee', total: 1500, currency: 'USD', first_order_item: { product_id: 7, variant_id: variant } },
    },
  });
  const signature = createHmac('sha256', SECRET).update(body).digest('hex');
  const response = await fetch(`${server.baseUrl}/hooks/lemonsqueezy`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': signature }, body,
  });
  return { status: response.status, receipt: await response.json() };
}

/** An endpoint that takes every delivery with 204 and counts them. */
async function receiver() {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { received.push({ headers: req.headers, body }); res.writeHead(204).end(); });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/events`, received, close: () => server.close() };
}

test('payments: secret, mapping, a notification and its order, reprocess, webhooks out', async (t) => {
  const server = await startServer([], { apiToken: true });
  t.after(() => server.stop());
  await server.api('POST', '/api/v1/products', { product_id: 'book', name: 'The Book', max_downloads: 3, download_days: 31 });
  const endpoint = await receiver();
  t.after(() => endpoint.close());

  const browser = await startBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = watchErrors(page);
  await firstAdmin(page, server);

  // 1. Turn Lemon Squeezy on with its signing secret.
  await page.goto(`${server.baseUrl}/admin/payments`);
  await hydrated(page);
  const panel = page.locator('[data-provider="lemonsqueezy"]');
  await panel.locator('summary').click(); // providers that are off start folded
  assert.match(await panel.locator('.hook-url').innerText(), /\/hooks\/lemonsqueezy$/);
  await panel.getByLabel('Take Lemon Squeezy notifications').check();
  await panel.getByLabel('Signing secret').fill(SECRET);
  await panel.getByRole('button', { name: 'Save' }).click();
  await panel.getByText('Saved.').waitFor();
  await panel.getByText('…test').waitFor(); // shown by its last four characters only
  await page.reload();
  await hydrated(page);
  assert.equal(await page.locator('[data-provider="lemonsqueezy"] .badge').innerText(), 'on');
  assert.ok(!(await page.content()).includes(SECRET), 'the secret never comes back to the page');

  // 2. A sale of a variant not mapped yet is kept and shown.
  const first = await lemonSqueezy(server, { order: '5001', variant: 222, email: 'lee@example.com' });
  assert.equal(first.receipt.outcome, 'needs_mapping');

  // 3. Map the product on its page (a full load).
  await page.goto(`${server.baseUrl}/admin/products/book`);
  await hydrated(page);
  await page.getByLabel('Lemon Squeezy variant or product ids').fill('111, 222');
  await page.getByRole('button', { name: 'Save the ids' }).click();
  await page.locator('.mappings').getByText('Saved.').waitFor();

  // 4. A mapped sale arrives: the notification and its order show after a reload.
  const second = await lemonSqueezy(server, { order: '5002', variant: 111, email: 'kim@example.com' });
  assert.equal(second.receipt.outcome, 'order_created');
  await page.goto(`${server.baseUrl}/admin/payments`);
  await hydrated(page);
  const created = page.locator(`tr[data-notification="${second.receipt.notification_id}"]`);
  assert.equal(await created.getAttribute('data-outcome'), 'order_created');
  await page.screenshot({ path: join(screenshotDir, 'admin-payments.png'), fullPage: true });

  // 5. Reprocess the kept one now that its variant is mapped.
  const kept = page.locator(`tr[data-notification="${first.receipt.notification_id}"]`);
  assert.equal(await kept.getAttribute('data-outcome'), 'needs_mapping');
  await kept.getByRole('button', { name: 'Reprocess' }).click();
  await page.locator('.reprocessed').waitFor();
  assert.match(await page.locator('.reprocessed').innerText(), /order created/);
  await page.reload();
  await hydrated(page);
  assert.equal(await page.locator(`tr[data-notification="${first.receipt.notification_id}"]`).getAttribute('data-outcome'), 'order_created');

  // 6. Its order is one click away.
  await created.getByRole('link').click();
  await page.waitForURL(/\/admin\/orders\/\d{7}$/);
  await hydrated(page);
  await page.waitForFunction(() => document.querySelector('input[name="email"]')?.value === 'kim@example.com');

  // 7. Events out: add an endpoint, see the delivery of the next confirmed order.
  await page.goto(`${server.baseUrl}/admin/webhooks`);
  await hydrated(page);
  await page.getByLabel('URL').fill(endpoint.url);
  await page.getByLabel(/order\.confirmed/).check();
  await page.getByRole('button', { name: 'Add the endpoint' }).click();
  const secret = await page.locator('.new-secret').innerText();
  assert.match(secret, /^whsec_/);
  await lemonSqueezy(server, { order: '5003', variant: 111, email: 'max@example.com' });
  for (let i = 0; i < 100 && endpoint.received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(endpoint.received.length, 1);
  assert.equal(JSON.parse(endpoint.received[0].body).type, 'order.confirmed');
  assert.ok(endpoint.received[0].headers['webhook-signature'].startsWith('v1,'));
  await page.reload();
  await hydrated(page);
  await page.locator('tr[data-state="delivered"]').first().waitFor();
  assert.ok(!(await page.content()).includes(secret), 'the endpoint secret is shown once only');
  await page.screenshot({ path: join(screenshotDir, 'admin-webhooks.png'), fullPage: true });

  assert.deepEqual(errors, []);
});
