// Every admin page in Chromium, the way a seller opens it (a full load, then hydration):
// axe-core finds no serious or critical violation, and the page does not scroll sideways
// at 320 px or at 200 % zoom (640 CSS px at device scale 2). By keyboard alone: Tab reaches
// every control of every page with a visible focus ring and on screen, at full width and
// at 200 % zoom; the sign-in page signs in with Tab, typing and Enter; a confirmation
// (the desk's Reset…) is asked, taken back with Escape and confirmed without losing focus.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, watchErrors, hydrated, firstAdmin, axeViolations, overflows, keyboardProblems, EMAIL, PASSWORD } from './harness.mjs';

test('every admin page passes axe-core, fits 320 px and 200 % zoom and works by keyboard', async (t) => {
  const server = await startServer([], { apiToken: true });
  t.after(() => server.stop());
  const browser = await startBrowser();
  t.after(() => browser.close());

  await server.api('POST', '/api/v1/products', { product_id: 'ebook', name: 'The Ebook', max_downloads: 3, download_days: 30 });
  await server.api('PUT', '/api/v1/products/ebook/files/book.txt', 'the whole book', 'text/plain');
  const order = await server.api('POST', '/api/v1/orders', { email: 'buyer@example.com', name: 'Buyer', product_ids: ['ebook'] });
  const password = order.issued[0].password;

  const setup = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const first = await setup.newPage();
  await firstAdmin(first, server);
  await first.goto(`${server.baseUrl}/admin/outbox`, { waitUntil: 'load' });
  const mailHref = await first.locator('a[href^="/admin/outbox/"]').first().getAttribute('href');
  const cookies = await setup.cookies();
  await setup.close();

  // Sign-in by keyboard alone, in a fresh browser.
  const anonymous = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await anonymous.newPage();
  await login.goto(`${server.baseUrl}/admin/login`);
  await hydrated(login);
  const focusedName = () => login.evaluate(() => document.activeElement?.getAttribute('name') || document.activeElement?.textContent);
  const tabTo = async (name) => {
    for (let i = 0; i < 40; i++) {
      await login.keyboard.press('Tab');
      if ((await focusedName()) === name) return;
    }
    assert.fail(`Tab never reached ${name}`);
  };
  await tabTo('email');
  await login.keyboard.type(EMAIL);
  await tabTo('password');
  await login.keyboard.type(PASSWORD);
  await login.keyboard.press('Enter');
  await login.waitForURL(`${server.baseUrl}/admin`);

  // A confirmation by keyboard: Enter asks, and focus moves to the question's button;
  // Escape takes the question back and focus returns; after confirming, focus is where it
  // was (not lost to the top of the page).
  await login.goto(`${server.baseUrl}/admin/desk?q=${password}`);
  await hydrated(login);
  await login.locator('button', { hasText: 'Reset…' }).first().waitFor();
  const focusMovesTo = async (words, why) => {
    try {
      await login.waitForFunction((w) => document.activeElement?.textContent === w, words, { timeout: 3000 });
    } catch {
      assert.fail(`${why}: focus is on ${await login.evaluate(() => document.activeElement?.outerHTML.slice(0, 80))}, not "${words}"`);
    }
  };
  await tabTo('Reset…');
  await login.keyboard.press('Enter');
  await focusMovesTo('Yes, reset', 'Enter on Reset… asks');
  await login.keyboard.press('Escape');
  await focusMovesTo('Reset…', 'Escape takes the question back');
  await login.keyboard.press('Enter');
  await focusMovesTo('Yes, reset', 'asked again');
  await login.keyboard.press('Enter');
  await login.getByText('Reset: a fresh period starts now.').waitFor();
  await focusMovesTo('Reset…', 'after confirming');
  await anonymous.close();

  const pages = [
    new URL(server.setupLink).pathname + new URL(server.setupLink).search, '/admin/login', '/admin', '/admin/products', '/admin/products/ebook', '/admin/orders', `/admin/orders/${order.order_id}`,
    '/admin/outbox', mailHref, '/admin/desk', `/admin/desk?q=${password}`, '/admin/activity', '/admin/audit',
    '/admin/settings', '/admin/mail-templates', '/admin/mail-templates?kind=purchase&language=de',
    '/admin/payments', '/admin/webhooks', '/admin/records', '/admin/customers/buyer@example.com',
  ];
  const problems = [];
  const tabStops = [];
  for (const [width, scale] of [[1280, 1], [320, 1], [640, 2]]) {
    const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: scale, bypassCSP: true });
    const page = await context.newPage();
    const errors = watchErrors(page);
    for (const path of pages) {
      // The sign-in and setup pages are seen signed out.
      await context.clearCookies();
      if (!path.startsWith('/admin/login') && !path.startsWith('/admin/setup')) await context.addCookies(cookies);
      await page.goto(server.baseUrl + path, { waitUntil: 'load' });
      await hydrated(page);
      await page.waitForTimeout(150);
      if (width === 1280) problems.push(...(await axeViolations(page)).map((v) => `${path}: ${v}`));
      const wide = await overflows(page);
      if (wide) problems.push(`${path}: scrolls sideways at ${width} px (scale ${scale}): ${wide}`);
      if (width !== 320) {
        const keyboard = await keyboardProblems(page);
        problems.push(...keyboard.problems.map((p) => `${path} at ${width} px (scale ${scale}): ${p}`));
        if (keyboard.stops === 0) problems.push(`${path}: Tab reaches nothing`);
        tabStops.push(`${path} ${keyboard.stops}`);
      }
    }
    assert.deepEqual(errors, [], `console errors at ${width} px`);
    await context.close();
  }
  console.log(`tab stops at 1280 px: ${tabStops.slice(0, pages.length).join(', ')}`);
  assert.deepEqual(problems, []);
});
