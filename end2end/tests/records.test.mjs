// Records in a real browser: the seller previews a legacy sale-records file (rejected rows
// by line, a product ID to map), imports it, and the old link a buyer holds opens; then
// exports orders as CSV and downloads a backup. Pages are loaded the way people do: full
// loads and reloads.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, startBrowser, watchErrors, hydrated, screenshotDir, firstAdmin } from './harness.mjs';

const LEGACY = [
  '<?php exit; ?>',
  '20240105ABCDEFGHJKMNPQRS|ebook|ann@example.com|9XK12345AB678901C|Ann Smith',
  '20241301ABCDEFGHJKMNPQRU|ebook|bob@example.com|8XK12345AB678901C|Bob',
  '20240108ABCDEFGHJKMNPQRX|corse|eve@example.com||Eve',
  '',
].join('\n');

test('records: preview and import legacy sales, export CSV, download a backup', async (t) => {
  const server = await startServer([], { apiToken: true });
  t.after(() => server.stop());
  await server.api('POST', '/api/v1/products', { product_id: 'ebook', name: 'The Book', max_downloads: 3, download_days: 31 });
  await server.api('POST', '/api/v1/products', { product_id: 'course', name: 'The Course', max_downloads: 0, download_days: 0 });

  const browser = await startBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await firstAdmin(page, server);

  await page.goto(`${server.baseUrl}/admin/records`);
  await hydrated(page);
  await page.getByLabel('Sale records file', { exact: true }).setInputFiles({ name: 'downloads.php', mimeType: 'text/plain', buffer: Buffer.from(LEGACY) });
  const importButton = page.getByRole('button', { name: 'Import', exact: true });
  assert.ok(await importButton.isDisabled(), 'Import waits for a preview');

  // 1. The preview names the bad row by line and the product ID to map; nothing changes.
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByText(/^Preview: 3 rows read/).waitFor();
  const report = page.locator('.import-report');
  assert.match(await report.innerText(), /match no product: corse/);
  assert.match(await report.locator('table').first().innerText(), /3\s+the download ID 20241301ABCDEFGHJKMNPQRU starts with 20241301, which is not a date/);
  assert.equal((await server.api('GET', '/api/v1/orders')).length, 0);

  // 2. Mapped, and with the bad row left out, the new preview offers Import.
  await page.getByLabel(/Product IDs that differ/).fill('corse=course');
  assert.ok(await importButton.isDisabled(), 'changed settings need a new preview');
  await page.getByLabel(/Leave rejected rows out/).check();
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByText(/would create 2 orders with 2 links/).waitFor();
  await importButton.click();
  await page.getByText(/^Imported: 2 orders with 2 links/).waitFor();
  await page.screenshot({ path: join(screenshotDir, 'records-import.png'), fullPage: true });
  const orders = await server.api('GET', '/api/v1/orders');
  assert.equal(orders.length, 2);
  assert.ok(orders.every((o) => o.source === 'import'));

  // 3. The old link a buyer has kept since 2024 opens their product.
  const buyer = await context.newPage();
  await buyer.goto(`${server.baseUrl}/d/20240108ABCDEFGHJKMNPQRX`);
  assert.match(await buyer.locator('main').innerText(), /The Course/);
  await buyer.close();

  // 4. A reload keeps the page working; export the orders as CSV.
  await page.reload();
  await hydrated(page);
  const [csv] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download CSV' }).click(),
  ]);
  assert.match(csv.suggestedFilename(), /^dropgate-orders-\d{8}-\d{6}\.csv$/);
  const rows = readFileSync(await csv.path(), 'utf8').trim().split('\n');
  assert.equal(rows.length, 3);
  assert.match(rows[0], /^order_id,order_number,created_at,status/);
  assert.ok(rows.some((r) => r.includes('ann@example.com')));

  // 5. A backup downloads as a redb file.
  const [backup] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download a backup' }).click(),
  ]);
  assert.match(backup.suggestedFilename(), /^dropgate-\d{8}-\d{6}\.redb$/);
  const bytes = readFileSync(await backup.path());
  assert.ok(bytes.length > 4096);
  assert.equal(bytes.subarray(0, 4).toString('latin1'), 'redb');

  // 6. The customer page (a full load) shows the buyer; erasing asks first, then the old
  //    link stops working and the page says nothing is held any more.
  await page.goto(`${server.baseUrl}/admin/customers/ann@example.com`);
  await hydrated(page);
  await page.getByRole('heading', { name: 'Orders (1)' }).waitFor();
  assert.match(await page.locator('main').innerText(), /Ann Smith/);
  await page.getByRole('button', { name: 'Erase…' }).click();
  await page.getByText(/Erase everything personal about ann@example.com/).waitFor();
  await page.getByRole('button', { name: 'Yes, erase this buyer' }).click();
  await page.getByText(/^Erased: 1 orders, 1 links/).waitFor();
  await page.screenshot({ path: join(screenshotDir, 'customer-erased.png'), fullPage: true });
  await page.reload();
  await hydrated(page);
  await page.getByText(/holds nothing about this address/).waitFor();
  const gone = await fetch(`${server.baseUrl}/d/20240105ABCDEFGHJKMNPQRS`);
  assert.match(await gone.text(), /no longer valid/);

  assert.deepEqual(errors, []);
});
