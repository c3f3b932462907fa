// Product updates in a real browser with a real SMTP server: the seller uploads a new
// version of a file with a changelog (the buyer's old link then shows "Updated on" and
// serves it), attaches a file already in the store from the picker, and tells past buyers
// with the notify form, watching the progress. Full page loads and a reload throughout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, startBrowser, watchErrors, hydrated, screenshotDir, firstAdmin, startSink, smtpFlags } from './harness.mjs';

const isUpdate = (m) => m.headers.some(([name, value]) => name.toLowerCase() === 'subject' && value.startsWith('New version of'));

test('updates: a new version, the store picker, telling past buyers', async (t) => {
  const sink = await startSink();
  t.after(() => sink.stop());
  const server = await startServer(smtpFlags(sink), { apiToken: true });
  t.after(() => server.stop());
  await server.api('POST', '/api/v1/products', { product_id: 'guide', name: 'The Field Guide', max_downloads: 3, download_days: 31 });
  await server.api('PUT', '/api/v1/products/guide/files/guide.pdf', Buffer.alloc(2000, 1), 'application/pdf');
  const ann = await server.api('POST', '/api/v1/orders', { email: 'ann@example.com', name: 'Ann', product_ids: ['guide'] });
  await server.api('POST', '/api/v1/orders', { email: 'bo@example.com', name: 'Bo', product_ids: ['guide'] });
  await sink.waitFor(4); // each buyer's mail and the seller's notices
  // A large file the seller put in the store by other means.
  mkdirSync(join(server.dataDir, 'files', 'releases'), { recursive: true });
  writeFileSync(join(server.dataDir, 'files', 'releases', 'field-guide-maps.zip'), Buffer.alloc(70000, 7));

  const browser = await startBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await firstAdmin(page, server);

  // 1. A new version with a changelog.
  await page.goto(`${server.baseUrl}/admin/products/guide`);
  await hydrated(page);
  await page.getByLabel(/What changed/).fill('Chapter 9 added');
  await page.getByLabel('File to upload').setInputFiles({ name: 'guide.pdf', mimeType: 'application/pdf', buffer: Buffer.alloc(3000, 2) });
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  await page.getByText('guide.pdf is uploaded as a new version').waitFor();
  await page.locator('.file-version', { hasText: 'v2' }).waitFor();
  await page.reload();
  await hydrated(page);
  const version = page.locator('.file-version').first();
  assert.match(await version.innerText(), /v2[\s\S]*Chapter 9 added[\s\S]*1 earlier version/);
  await version.getByText('1 earlier version').click();
  assert.match(await version.locator('.versions').innerText(), /v1 · 2\.0 KiB/);

  // 2. The buyer's old link shows the update and serves the new bytes.
  const buyer = await context.newPage();
  await buyer.goto(ann.issued[0].url);
  const buyerText = await buyer.locator('main').innerText();
  assert.match(buyerText, /Updated on/);
  assert.match(buyerText, /Chapter 9 added/);
  const files = (await server.api('GET', '/api/v1/products/guide')).files;
  const bytes = await (await fetch(`${ann.issued[0].url}/${files[0].file_id}`)).arrayBuffer();
  assert.equal(bytes.byteLength, 3000);
  await buyer.close();

  // 3. The store picker: search by the start of a key, attach without an upload.
  await page.getByLabel('Key starts with').fill('releases/');
  await page.getByRole('button', { name: 'List files' }).click();
  await page.getByRole('button', { name: 'Attach releases/field-guide-maps.zip' }).click();
  await page.getByText('field-guide-maps.zip is attached (version 1).').waitFor();
  await page.locator('table', { hasText: 'field-guide-maps.zip' }).first().waitFor();
  assert.equal((await server.api('GET', '/api/v1/products/guide')).files.length, 2);

  // 4. Tell past buyers; watch the progress.
  await page.getByLabel('Message').fill('Version 2 adds chapter 9.');
  await page.getByLabel('Mails per minute').fill('600');
  await page.getByRole('button', { name: 'Send to past buyers' }).click();
  await page.getByText('Sending: the progress is below.').waitFor();
  const mails = await sink.waitFor(2, isUpdate);
  assert.deepEqual(mails.map((m) => m.to).flat().sort(), ['ann@example.com', 'bo@example.com']);
  assert.ok(mails.every((m) => m.text.includes('Version 2 adds chapter 9.')));
  await page.getByRole('button', { name: 'Refresh progress' }).click();
  await page.getByText(/2 of 2 buyers mailed/).waitFor();
  await page.screenshot({ path: join(screenshotDir, 'product-update.png'), fullPage: true });

  // 5. Refused input says why and starts nothing.
  await page.getByLabel('Message').fill('   ');
  await page.getByRole('button', { name: 'Send to past buyers' }).click();
  await page.getByText(/write a message of 1 to 2000 characters/).waitFor();
  assert.equal((await server.api('GET', '/api/v1/products/guide/announcements')).length, 1);

  assert.deepEqual(errors, []);
});
