// The buyer's side in a real browser: the emailed link opens the download page, which shows
// the product and its files, and the download button delivers the exact bytes. Every buyer
// page is measured as a phone on a slow network sees it (bytes, requests, first paint),
// checked with axe-core, at 320 px and at 200 % zoom, by keyboard, in the buyer's language
// and time zone; a phone-width screenshot of each goes to end2end/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, startBrowser, watchErrors, screenshotDir, startSink, smtpFlags, axeViolations, overflows, keyboardProblems } from './harness.mjs';

/** The goal for one buyer page: HTML + CSS + icon. */
const MAX_BYTES = 30 * 1024;

/** Loads `url` as a first visit on a throttled phone (Slow 4G, 4× slower CPU); returns the
 *  bytes transferred, the requests and the first contentful paint. */
async function measure(browser, url, extraHeaders = {}) {
  const context = await browser.newContext({ viewport: { width: 390, height: 800 }, isMobile: true, extraHTTPHeaders: extraHeaders });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 150, downloadThroughput: (1.6 * 1024 * 1024) / 8, uploadThroughput: (750 * 1024) / 8,
  });
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  const requests = [];
  let bytes = 0;
  cdp.on('Network.requestWillBeSent', (e) => requests.push(e.request.url));
  cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForTimeout(300);
  const paint = await page.evaluate(() => performance.getEntriesByType('paint').find((p) => p.name === 'first-contentful-paint')?.startTime);
  await context.close();
  return { bytes, requests, paint };
}

/** A buyer page as a phone shows it, at 320 px and at 200 % zoom (640 px at device scale
 *  2): in `language`, nothing scrolls sideways, axe-core finds nothing serious, Tab reaches
 *  every control with a visible focus ring, no console errors; the 320 px view is kept as a
 *  screenshot. */
async function checkPage(browser, name, url, language, cookie) {
  for (const [width, scale] of [[320, 1], [640, 2]]) {
    const phone = await browser.newContext({ viewport: { width, height: 720 }, deviceScaleFactor: scale, bypassCSP: true, locale: language });
    if (cookie) await phone.addCookies([{ ...cookie }]);
    const p = await phone.newPage();
    const pageErrors = watchErrors(p);
    await p.goto(url);
    assert.equal(await p.getAttribute('html', 'lang'), language, `${name}`);
    assert.equal(await overflows(p), null, `${name} scrolls sideways at ${width} px`);
    assert.deepEqual(await axeViolations(p), [], `${name}: axe-core`);
    const keyboard = await keyboardProblems(p);
    assert.deepEqual(keyboard.problems, [], `${name} at ${width} px: keyboard`);
    assert.ok(keyboard.stops > 0, `${name}: Tab reaches nothing`);
    if (width === 320) await p.screenshot({ path: join(screenshotDir, `buyer-${name}-phone.png`), fullPage: true });
    assert.deepEqual(pageErrors, [], `${name}: console errors`);
    await phone.close();
  }
}

test('buyer pages are light, accessible, in the buyer\'s language, and the file downloads', async (t) => {
  const sink = await startSink();
  t.after(() => sink.stop());
  const server = await startServer(smtpFlags(sink), { apiToken: true });
  t.after(() => server.stop());
  const content = Buffer.alloc(200_000, 7);
  await server.api('POST', '/api/v1/products', { product_id: 'field-guide', name: 'The Field Guide', max_downloads: 3, download_days: 31 });
  await server.api('PUT', '/api/v1/products/field-guide/files/field-guide.pdf', content, 'application/pdf');
  const order = await server.api('POST', '/api/v1/orders', { email: 'reader@example.com', name: 'Rae', product_ids: ['field-guide'] });
  const german = await server.api('POST', '/api/v1/orders', { email: 'leser@example.com', name: 'Lea', product_ids: ['field-guide'], language: 'de' });
  const link = order.issued[0].url;

  const browser = await startBrowser();
  t.after(() => browser.close());

  // 1. Light: no WASM, no script file, under the goal, painted quickly on a slow phone.
  for (const url of [link, `${server.baseUrl}/resend`]) {
    const m = await measure(browser, url);
    assert.ok(m.bytes <= MAX_BYTES, `${url}: ${m.bytes} bytes transferred`);
    assert.ok(m.requests.length <= 3, `${url}: ${m.requests.join(', ')}`);
    assert.ok(!m.requests.some((r) => r.endsWith('.wasm') || r.endsWith('.js')), m.requests.join(', '));
    assert.ok(m.paint !== undefined && m.paint < 1000, `${url}: first paint ${m.paint} ms`);
    console.log(`buyer page ${new URL(url).pathname.slice(0, 8)}: ${m.bytes} B in ${m.requests.length} requests, first paint ${Math.round(m.paint)} ms`);
  }

  // 2. The download itself, in a browser whose zone is New York.
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 700 }, timezoneId: 'America/New_York', locale: 'en-US' });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(link);
  await page.getByRole('heading', { name: 'The Field Guide' }).waitFor();
  await page.getByText('3 of 3 downloads left').waitFor();
  // The store's zone was written by the server; the browser's replaced it.
  assert.equal(await page.locator('[data-zone]').textContent(), 'America/New_York');
  assert.match(await page.locator('main').textContent(), /\(in 30 days\)/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download field-guide.pdf' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'field-guide.pdf');
  assert.deepEqual(readFileSync(await download.path()), content);

  // 3. Keyboard alone: the first Tab stops reach the download link, Enter starts it.
  await page.reload();
  let reached = false;
  for (let i = 0; i < 6 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.textContent === 'Download field-guide.pdf');
  }
  assert.ok(reached, 'Tab reaches the download link');
  const [byKeyboard] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
  assert.equal(byKeyboard.suggestedFilename(), 'field-guide.pdf');
  assert.deepEqual(readFileSync(await byKeyboard.path()), content);

  // 4. The library, from the self-service page, with the mailed link, by keyboard.
  await page.goto(`${server.baseUrl}/resend`);
  await page.waitForTimeout(1600); // a person takes this long; quicker posts are refused
  await page.getByLabel('Email address').focus();
  await page.keyboard.type('reader@example.com');
  await page.getByRole('button', { name: 'Email me a sign-in link' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/library=sent/);
  const [mail] = await sink.waitFor(1, (m) => m.headers.some(([n, v]) => n === 'Subject' && v.startsWith('Sign in to your purchases')));
  const signIn = mail.text.split(/\s+/).find((w) => w.includes('/library/sign-in?token='));
  // The sign-in page (opening it spends nothing) is checked like every buyer page.
  await checkPage(browser, 'library-sign-in', signIn, 'en');
  await page.goto(signIn);
  await page.getByRole('button', { name: 'Show my purchases' }).click();
  await page.waitForURL(`${server.baseUrl}/library`);
  await page.getByRole('heading', { name: 'The Field Guide' }).waitFor();
  await page.getByText('1 of 3 downloads left').waitFor();
  const libraryBytes = await page.evaluate(() => performance.getEntriesByType('navigation')[0].transferSize
    + performance.getEntriesByType('resource').reduce((sum, r) => sum + r.transferSize, 0));
  assert.ok(libraryBytes <= MAX_BYTES, `library: ${libraryBytes} bytes`);
  assert.deepEqual(errors, [], 'no console errors');

  // 5. Every buyer page, as a phone, in English and German: axe-core finds nothing serious,
  //    nothing scrolls sideways at 320 px or at 200 % zoom, and a screenshot is kept.
  const session = (await context.cookies()).find((c) => c.name === 'dropgate_library');
  const pages = [
    ['download', link, 'en'],
    ['download-de', german.issued[0].url, 'de'],
    ['resend', `${server.baseUrl}/resend`, 'en'],
    ['resend-de', `${server.baseUrl}/resend?sent=1`, 'de'],
    ['library', `${server.baseUrl}/library`, 'en'],
    ['link-not-valid', `${server.baseUrl}/d/AAAA-BBBB-CCCC-DDDD-EEEE`, 'fr'],
  ];
  for (const [name, url, language] of pages) await checkPage(browser, name, url, language, session);

  // After a refund the library and the link explain why, checked the same way.
  await server.api('POST', `/api/v1/orders/${order.order_id}/refund`);
  await page.goto(`${server.baseUrl}/library`);
  await page.getByText('This order was refunded').waitFor();
  await checkPage(browser, 'library-refunded', `${server.baseUrl}/library`, 'en', session);
  await checkPage(browser, 'download-refunded', link, 'en');
});
