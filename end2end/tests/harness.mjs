// Test harness: starts the real dropgate binary on 127.0.0.1 with a temporary data dir,
// and Debian's Chromium through playwright-core. Everything is stopped after each test.

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const screenshotDir = join(here, '..', 'screenshots');

/** Starts `dropgate serve` on a free port; resolves once it prints its URL.
 *  With `apiToken: true`, an API token is created first (`dropgate token create`). */
export async function startServer(extraArgs = [], { apiToken = false } = {}) {
  const bin = process.env.DROPGATE_BIN;
  if (!bin) throw new Error('set DROPGATE_BIN to the built dropgate binary (cargo xtask test does)');
  const dataDir = mkdtempSync(join(tmpdir(), 'dropgate-e2e-'));
  let token = null;
  if (apiToken) {
    token = execFileSync(bin, ['token', 'create', '--data-dir', dataDir, '--name', 'e2e'], { encoding: 'utf8' }).trim();
  }
  const child = spawn(bin, ['serve', '--data-dir', dataDir, '--bind', '127.0.0.1:0', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
  });
  let output = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 15000);
    const onData = (chunk) => {
      const text = chunk.toString().replace(/\x1b\[[0-9;]*m/g, '');
      output += text;
      // For a run by hand: DROPGATE_E2E_LOG=1 streams the server's log to stderr.
      if (process.env.DROPGATE_E2E_LOG) process.stderr.write(text);
      // "Dropgate is listening" is the last start-up line; the setup link comes before it.
      const url = output.match(/Dropgate is listening.*public_url="?(http:\/\/127\.0\.0\.1:\d+)/);
      const setup = output.match(/(http:\/\/127\.0\.0\.1:\d+\/admin\/setup\?token=[A-Za-z0-9_-]+)/);
      if (url) {
        clearTimeout(timer);
        resolve({ baseUrl: url[1], setupLink: setup ? setup[1] : null });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  const { baseUrl, setupLink } = await ready;
  // A server that ends by itself during a test (a crash, or the watchdog's exit 70) fails it.
  let exitedBy = null;
  child.on('exit', (code, signal) => { if (exitedBy === null) exitedBy = { code, signal }; });
  return {
    baseUrl,
    setupLink,
    token,
    dataDir,
    /** Calls the REST API with the token. */
    async api(method, path, body, contentType = 'application/json') {
      const response = await fetch(baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
        body: body === undefined ? undefined : contentType === 'application/json' ? JSON.stringify(body) : body,
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    output: () => output,
    /** SIGTERM, as a supervisor stops it. A server still running after its 30 s grace
     *  period (plus margin) is a bug: it is killed and the test fails with its log. */
    async stop() {
      const endedAlone = exitedBy;
      const exited = new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(true) : child.on('exit', () => r(true))));
      child.kill('SIGTERM');
      let timer;
      const late = new Promise((r) => { timer = setTimeout(() => r(false), 40000); });
      const inTime = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (!inTime) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
      if (!inTime) throw new Error(`the server did not stop within 40 s of SIGTERM; its log:\n${output}`);
      // A panic anywhere, or the watchdog firing, fails the test even if every step passed.
      const problems = serverProblems(output);
      if (endedAlone) problems.push(`the server exited by itself (code ${endedAlone.code}, signal ${endedAlone.signal})`);
      if (problems.length) throw new Error(`${problems.join('; ')}; the server's log:\n${output}`);
    },
  };
}

/** What in a server's log means the test failed, whatever the pages showed. */
export function serverProblems(output) {
  const problems = [];
  if (/panicked at/.test(output)) problems.push('the server panicked');
  if (/has not run a task/.test(output)) problems.push('the runtime watchdog fired');
  if (/page render (panicked|did not finish)/.test(output)) problems.push('a page render failed');
  return problems;
}

/** Launches headless Chromium with the flags this machine needs. */
export async function startBrowser() {
  mkdirSync(screenshotDir, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync',
    ],
  });
}

/** Collects console errors and page errors (CSP violations and panics show up here).
 *  Chromium also logs every 4xx answer as an error; the tests cause those on purpose
 *  (a refused sign-in is a 401), so they are left out. */
export function watchErrors(page) {
  const errors = [];
  const expected = /^Failed to load resource: the server responded with a status of 4\d\d/;
  page.on('console', (msg) => { if (msg.type() === 'error' && !expected.test(msg.text())) errors.push(msg.text()); });
  page.on('pageerror', (err) => errors.push(String(err)));
  return errors;
}

/** Waits until the WASM has hydrated the page. */
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 15000 });
}

/** The first admin's sign-in details in every browser test. */
export const EMAIL = 'owner@example.com';
export const PASSWORD = 'correct horse battery staple';

/** Creates the first admin through the setup link and lands on the dashboard. */
export async function firstAdmin(page, server) {
  await page.goto(server.setupLink);
  await hydrated(page);
  await page.getByLabel('Email').fill(EMAIL);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await page.waitForURL(`${server.baseUrl}/admin`);
}

/** The `dropgate serve` flags that send mail to `sink`. */
export function smtpFlags(sink) {
  return ['--smtp-host', '127.0.0.1', '--smtp-port', String(sink.port), '--smtp-security', 'none',
    '--smtp-from', 'Tiny Shop <shop@example.com>'];
}

/** A TCP port nothing listens on (yet). */
export async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts the SMTP sink (aiosmtpd, the one the Rust tests use); `received()` lists the
 *  decoded mails in arrival order. */
export async function startSink() {
  const dir = mkdtempSync(join(tmpdir(), 'dropgate-smtp-'));
  const port = await freePort();
  const script = join(here, '..', '..', 'server', 'tests', 'support', 'smtp_sink.py');
  const child = spawn('python3', [script, dir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => { if (d.toString().includes('ready')) resolve(); });
    child.on('exit', (code) => reject(new Error(`smtp sink exited with ${code}`)));
  });
  const received = () => readdirSync(dir).filter((f) => f.endsWith('.eml')).sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f.replace('.eml', '.json')), 'utf8')));
  return {
    port,
    received,
    async waitFor(n, pick = () => true) {
      for (let i = 0; i < 200; i++) {
        if (received().filter(pick).length >= n) return received().filter(pick);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`expected ${n} mails, got ${received().filter(pick).length}`);
    },
    stop() { child.kill(); rmSync(dir, { recursive: true, force: true }); },
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations on the page as it is now (the page's
 *  context needs `bypassCSP: true`, since axe is injected as a script). */
export async function axeViolations(page) {
  await page.addScriptTag({ content: axeSource });
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.help}): ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join(', ')}`);
}

/** What makes the page itself scroll sideways (its layout does not fit the width; a
 *  wide table scrolling inside its own box is fine): the outermost elements that reach
 *  past the right edge, or `null` when nothing does. */
export async function overflows(page) {
  return page.evaluate(() => {
    const root = document.documentElement;
    if (root.scrollWidth <= root.clientWidth + 1) return null;
    const name = (e) => e.tagName.toLowerCase() + (e.id ? `#${e.id}` : '') + (e.className && typeof e.className === 'string' ? `.${e.className.trim().split(/\s+/).join('.')}` : '');
    const wide = [...document.body.querySelectorAll('*')]
      .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 1)
      .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= root.clientWidth + 1);
    return wide.slice(0, 4).map(name).join(', ') || `${root.scrollWidth} px wide`;
  });
}

/** What stops someone using the keyboard alone on this page, walking it with Tab from the
 *  top until focus leaves the page or comes round again: a tab stop that is off screen or
 *  has no visible focus ring when reached (the ring is the stylesheet's `:focus-visible`
 *  outline, or the browser's own inside a frame such as the mail preview), and a shown
 *  control that Tab never reaches (one stop per radio group). Returns the problems (empty
 *  when there are none) and the number of tab stops. */
export async function keyboardProblems(page, limit = 400) {
  await page.evaluate(() => {
    // Tab goes on from the last focused element (an autofocus field, say): focusing the
    // body starts the walk at the top of the page.
    document.activeElement?.blur?.();
    document.body.tabIndex = -1;
    document.body.focus();
    document.body.removeAttribute('tabindex');
    window.scrollTo(0, 0);
    window.__tabStops = 0;
    for (const e of document.querySelectorAll('[data-tab-stop]')) delete e.dataset.tabStop;
  });
  const problems = [];
  let stops = 0;
  let presses = 0;
  for (; presses < limit; presses++) {
    await page.keyboard.press('Tab');
    const stop = await page.evaluate(focusedStop, false);
    if (!stop) break;
    if (stop.frame) {
      // Focus is inside a frame: the parent only sees the frame element, which never
      // matches :focus; the ring that shows is on the element focused inside it.
      const frame = await (await page.evaluateHandle(() => document.activeElement)).asElement().contentFrame();
      const inner = await frame.evaluate(focusedStop, true);
      if (inner && !inner.ring) problems.push(`${stop.name} > ${inner.name} shows no focus ring`);
      if (stop.again) continue;
    }
    // A date field takes one Tab per part (day, month, year) while staying the focused
    // element; only a return to an earlier stop means focus came round again.
    if (stop.again && stop.again === String(stops)) continue;
    if (stop.again) break;
    stops++;
    if (!stop.onScreen && stop.frame) {
      // Focus inside a frame of its own process scrolls the page a moment later.
      await page.waitForTimeout(250);
      stop.onScreen = await page.evaluate(() => {
        const r = document.activeElement.getBoundingClientRect();
        return r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
      });
    }
    if (!stop.onScreen) problems.push(`${stop.name} is off screen when focused`);
    if (!stop.frame && !stop.ring) problems.push(`${stop.name} shows no focus ring`);
  }
  if (presses >= limit) problems.push(`Tab never left the page after ${limit} presses`);
  const unreached = await page.evaluate(() => {
    const describe = (e) => e.tagName.toLowerCase() + (e.getAttribute('name') ? `[name=${e.getAttribute('name')}]` : '')
      + ` "${(e.getAttribute('aria-label') || e.textContent || e.value || '').trim().replace(/\s+/g, ' ').slice(0, 40)}"`;
    const reachedGroups = new Set([...document.querySelectorAll('input[type=radio][data-tab-stop]')].map((r) => r.name));
    return [...document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]')]
      // A control taken out of the Tab order (tabindex="-1") counts as unreached, unless a
      // composite widget moves focus among its parts with the arrow keys.
      .filter((e) => !e.disabled && e.type !== 'hidden')
      .filter((e) => e.tabIndex >= 0 || (e.matches('a[href], button, input, select, textarea, summary')
        && !e.closest('[role=tablist], [role=radiogroup], [role=menu], [role=listbox], [role=grid], [role=tree]')))
      .filter((e) => e.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true }))
      // Hidden from people on purpose (a honeypot field): axe-core checks that nothing in
      // there can take focus.
      .filter((e) => !e.closest('[inert], [aria-hidden=true]'))
      // The body of a closed <details> is not shown (its summary is the tab stop).
      .filter((e) => !e.closest('details:not([open]) > :not(summary)'))
      .filter((e) => !(e.type === 'radio' && reachedGroups.has(e.name)))
      .filter((e) => !e.dataset.tabStop)
      .map(describe);
  });
  problems.push(...unreached.map((name) => `${name} is never reached by Tab`));
  return { problems, stops };
}

/** Runs in the page (or, with `inFrame`, in a frame): the focused element as a tab stop —
 *  its name, whether it shows a focus ring and is on screen, whether it is a frame, and
 *  `again` (its number) when the walk has been there before; `null` when nothing is. */
function focusedStop(inFrame) {
  const e = document.activeElement;
  if (!e || e === document.body || e === document.documentElement) return null;
  const name = e.tagName.toLowerCase() + (e.getAttribute('name') ? `[name=${e.getAttribute('name')}]` : '')
    + ` "${(e.getAttribute('aria-label') || e.textContent || e.value || '').trim().replace(/\s+/g, ' ').slice(0, 40)}"`;
  const s = getComputedStyle(e);
  // 'auto' is the browser's own ring (a frame's content keeps the browser's styles).
  const ring = s.outlineStyle === 'auto' || (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2);
  if (inFrame) return { name, ring };
  const again = e.dataset.tabStop;
  if (!again) e.dataset.tabStop = String(++window.__tabStops);
  const r = e.getBoundingClientRect();
  return {
    name, ring, again, frame: e.tagName === 'IFRAME',
    onScreen: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth,
  };
}
