// The buyer's side in a real browser: the emailed link opens the download page, which shows
// the product and its files, and the download button delivers the exact bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, startBrowser, watchErrors, hydrated, screenshotDir } from './harness.mjs';

test('buyer opens the link and downloads the file', async (t) => {
  const server = await startServer([], { apiToken: true });
  t.after(() => server.stop());
  const content = Buffer.alloc(200_000, 7);
  await server.api('POST', '/api/v1/products', { product_id: 'field-guide', name: 'The Field Guide', max_downloads: 3, download_days: 31 });
  await server.api('PUT', '/api/v1/products/field-guide/files/field-guide.pdf', content, 'application/pdf');
  const order = await server.api('POST', '/api/v1/orders', { email: 'reader@example.com', name: 'Rae', product_ids: ['field-guide'] });
  const link = order.issued[0].url;

  const browser = await startBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(link);
  await hydrated(page);
  await page.getByRole('heading', { name: 'The Field Guide' }).waitFor();
  await page.getByText('3 of 3 downloads left').waitFor();
  await page.screenshot({ path: join(screenshotDir, 'buyer-page.png'), fullPage: true });

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download field-guide.pdf' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'field-guide.pdf');
  const saved = await download.path();
  assert.deepEqual(readFileSync(saved), content);

  // After a refund the same link explains itself.
  await server.api('POST', `/api/v1/orders/${order.order_id}/refund`);
  await page.reload();
  await page.getByText('This order was refunded').waitFor();
  await page.screenshot({ path: join(screenshotDir, 'buyer-refunded.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no console errors');
});
