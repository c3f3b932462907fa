// Mail in a real browser with a real SMTP server (aiosmtpd, the same sink the Rust tests
// use): the buyer asks for new links on the self-service page and opens the mailed link;
// the seller reads the outbox and one mail as sent, sends a test mail from Settings, and
// edits a mail text whose mistake is shown with its line before anything is saved.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, startBrowser, watchErrors, hydrated, screenshotDir, firstAdmin, startSink, smtpFlags } from './harness.mjs';

test('mail: self-service links, outbox, test mail, template editor', async (t) => {
  const sink = await startSink();
  t.after(() => sink.stop());
  const server = await startServer(smtpFlags(sink), { apiToken: true });
  t.after(() => server.stop());
  await server.api('POST', '/api/v1/products', { product_id: 'field-guide', name: 'The Field Guide', max_downloads: 3, download_days: 31 });
  await server.api('PUT', '/api/v1/products/field-guide/files/guide.pdf', Buffer.alloc(5000, 1), 'application/pdf');
  await server.api('POST', '/api/v1/orders', { email: 'reader@example.com', name: 'Rae', product_ids: ['field-guide'] });
  await sink.waitFor(2); // the buyer's mail and the seller's notice

  const browser = await startBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = watchErrors(page);

  // 1. The buyer lost the mail: the self-service page sends new links.
  await page.goto(`${server.baseUrl}/resend`);
  await page.getByLabel('Email address').fill('reader@example.com');
  // A person takes a moment; a form sent sooner than 1.5 s after it was shown is refused.
  await page.waitForTimeout(1600);
  await page.getByRole('button', { name: 'Send me new links' }).click();
  await page.getByText('If there are purchases for that address').waitFor();
  await page.screenshot({ path: join(screenshotDir, 'buyer-resend.png'), fullPage: true });
  const mails = await sink.waitFor(3);
  const links = mails[2];
  assert.deepEqual(links.to, ['reader@example.com']);
  const url = links.text.split(/\r?\n/).map((l) => l.trim()).find((l) => l.includes('/d/'));
  await page.goto(url);
  await page.getByRole('heading', { name: 'The Field Guide' }).waitFor();

  // 2. The seller's outbox: every mail with its state; one mail as sent.
  await firstAdmin(page, server);
  await hydrated(page);
  await page.getByRole('link', { name: 'Outbox' }).click();
  await page.waitForURL(`${server.baseUrl}/admin/outbox`);
  const rows = page.locator('table.outbox tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 3);
  assert.equal(await page.locator('table.outbox [data-state="sent"]').count(), 3);
  await page.screenshot({ path: join(screenshotDir, 'outbox.png'), fullPage: true });
  await page.getByRole('link', { name: 'Your download links from My download store' }).click();
  await page.getByRole('heading', { name: 'Your download links from My download store' }).waitFor();
  assert.match(await page.locator('pre.mail-text').innerText(), /\/d\//);
  assert.match(await page.locator('.facts').innerText(), /250/);
  await page.screenshot({ path: join(screenshotDir, 'outbox-mail.png'), fullPage: true });

  // 3. A test mail from Settings.
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.locator('input[name="test-email"]').fill('me@example.com');
  await page.getByRole('button', { name: 'Send test mail' }).click();
  await page.locator('.test-mail-queued').waitFor();
  const test = (await sink.waitFor(4))[3];
  assert.deepEqual(test.to, ['me@example.com']);
  assert.match(test.text, /test mail from Dropgate/);

  // 4. The template editor: a mistake is shown with its line, nothing is saved until fixed.
  await page.goto(`${server.baseUrl}/admin/mail-templates?kind=self_service`);
  await hydrated(page);
  const text = page.locator('textarea[name="text"]');
  await text.waitFor();
  await text.fill('Hello {{buyer_name}},\n\nyour links:\n{{linkz}}\n');
  await page.getByText('line 4: unknown placeholder {{linkz}}').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Save' }).isDisabled(), true);
  await text.fill('Hello {{buyer_name}},\n\nyour links:\n{{links}}\n');
  await page.locator('.preview-text').getByText('Hello Ada Lovelace,').waitFor();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved. New mails use this text.').waitFor();
  await page.screenshot({ path: join(screenshotDir, 'mail-templates.png'), fullPage: true });

  // The form as a script would send it, with the stamp the page carries.
  const form = await (await fetch(`${server.baseUrl}/resend`)).text();
  const shown = form.match(/name="shown" value="([^"]+)"/)[1];
  await new Promise((resolve) => setTimeout(resolve, 1600));
  await fetch(`${server.baseUrl}/resend`, { method: 'POST', body: new URLSearchParams({ email: 'reader@example.com', shown }), redirect: 'manual' });
  const custom = (await sink.waitFor(5))[4];
  assert.match(custom.text, /^Hello Rae,\r?\n\r?\nyour links:/);
  assert.deepEqual(errors, []);
});
