// Issue 15 in a real browser: four tabs reload every admin page and the buyer pages at
// once with full navigations (as F5, a bookmark or an opened link does: a server render
// each time, then hydration), not client-side route changes. Every load must reach the
// `load` event with a complete 200 page, admin pages must hydrate, the console must stay
// free of errors, and the server's log free of panics and watchdog reports (the harness
// checks that when the server stops). A download works afterwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, watchErrors, hydrated, firstAdmin } from './harness.mjs';

const TABS = 4;
const ROUNDS = 3;

/** Loads `url` in `page` fully, then reloads it; returns what went wrong, if anything. */
async function loadAndReload(page, url, { hydrates }) {
  const failures = [];
  for (const step of ['goto', 'reload']) {
    const response = step === 'goto'
      ? await page.goto(url, { waitUntil: 'load', timeout: 20000 })
      : await page.reload({ waitUntil: 'load', timeout: 20000 });
    if (!response || response.status() !== 200) {
      failures.push(`${step} ${url}: status ${response?.status()}`);
      continue;
    }
    const html = await response.text();
    if (!html.includes('</html>')) failures.push(`${step} ${url}: an incomplete page`);
    if (hydrates) {
      try {
        await hydrated(page);
      } catch {
        failures.push(`${step} ${url}: did not hydrate`);
      }
    }
  }
  return failures;
}

test('four tabs reload every page with full navigations: complete pages, no errors, no panic', async (t) => {
  const server = await startServer([], { apiToken: true });
  t.after(() => server.stop());
  const browser = await startBrowser();
  t.after(() => browser.close());

  // A shop with a product, its file, an order and the order's mail.
  await server.api('POST', '/api/v1/products', { product_id: 'ebook', name: 'The Ebook', max_downloads: 3, download_days: 30 });
  const file = await server.api('PUT', '/api/v1/products/ebook/files/book.txt', 'the whole book', 'text/plain');
  const order = await server.api('POST', '/api/v1/orders', { email: 'buyer@example.com', name: 'Buyer', product_ids: ['ebook'] });
  const password = order.issued[0].password;

  const seller = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const first = await seller.newPage();
  await firstAdmin(first, server);
  await first.goto(`${server.baseUrl}/admin/outbox`, { waitUntil: 'load' });
  const mailHref = await first.locator('a[href^="/admin/outbox/"]').first().getAttribute('href');
  await first.close();

  const adminRoutes = [
    '/admin', '/admin/products', '/admin/products/ebook', '/admin/orders', `/admin/orders/${order.order_id}`,
    '/admin/outbox', mailHref, '/admin/desk', `/admin/desk?q=${password}`, '/admin/activity', '/admin/audit',
    '/admin/settings', '/admin/mail-templates', '/admin/mail-templates?kind=resend',
    '/admin/payments', '/admin/webhooks', '/admin/records',
  ];
  const buyerRoutes = [`/d/${password}`, '/resend', '/admin/login'];

  const walk = async (context, routes, hydrates, tab) => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    const failures = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Each tab starts at a different page, so different pages render at the same time.
      for (let i = 0; i < routes.length; i++) {
        const route = routes[(i + tab) % routes.length];
        failures.push(...await loadAndReload(page, server.baseUrl + route, { hydrates }));
      }
    }
    await page.close();
    return { failures, errors };
  };

  const buyer = await browser.newContext({ viewport: { width: 390, height: 800 } });
  const results = await Promise.all([
    ...Array.from({ length: TABS }, (_, tab) => walk(seller, adminRoutes, true, tab)),
    ...Array.from({ length: TABS }, (_, tab) => walk(buyer, buyerRoutes, false, tab)),
  ]);
  const failures = results.flatMap((r) => r.failures);
  const errors = results.flatMap((r) => r.errors);
  const loads = TABS * ROUNDS * 2 * (adminRoutes.length + buyerRoutes.length);
  assert.deepEqual(failures, [], `${failures.length} of ${loads} loads failed`);
  assert.deepEqual(errors, [], 'console errors');

  // The buyer's download still works.
  const download = await fetch(`${server.baseUrl}/d/${password}/${file.file_id}`);
  assert.equal(download.status, 200);
  assert.equal(await download.text(), 'the whole book');
});
