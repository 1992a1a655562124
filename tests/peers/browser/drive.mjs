// A real browser for Gatehouse's integration tests: Chromium driven by `playwright-core`, pages
// checked with `axe-core`. Started by tests/it/peers/browser.rs, which holds the test logic;
// this script only does what it is told and reports what the browser saw.
//
// Protocol (JSON lines): the first line on stdin is the session's settings
//   {"chromium": "<path of the Chromium binary>", "javascript": true|false,
//    "artifacts": "<folder for screenshots>"}
// and the script answers {"ok": true, "version": "<browser version>"} once Chromium runs.
// Every further line is one command, answered by one line: {"ok": true, ...} or
// {"ok": false, "error": "..."}. Commands (`cmd`):
//   goto {url}                  open a URL; answers the page (see `state`)
//   fill {selector, value}      type into a field (its current text replaced)
//   click {selector, navigates} click; unless `navigates` is false, waits until the page it
//                               leads to (after any redirects) has loaded; answers {url,
//                               trail}: every main-frame request on the way
//   state                       {url, status, title, html, text, trail}: the main frame's
//                               last response status, the DOM as HTML, the body's visible text
//   visible {selector}          {visible: bool}
//   snap {name}                 full-page screenshots at 1280 px and 390 px wide into
//                               `artifacts` (<name>-1280.png, <name>-390.png) and an axe-core
//                               run on the page at each width (every finding, of any impact,
//                               also in <name>-axe.json): {files, violations: [{id, impact,
//                               help, targets, width}]}
//   close                       ends the browser and the script
//
// axe with JavaScript disabled: Chromium then runs no script in the page, and axe's own run
// never finishes there (its timers do not fire). So the page's HTML as the browser holds it (with
// JavaScript off that is what the server sent, parsed) is loaded into a second, JavaScript-enabled
// context at the same URL (a route answers it from memory, no request reaches the server), under
// a `script-src 'none'` policy so that no script of the page runs there either; axe runs in that
// copy, at each width.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WIDTHS = [1280, 390];
const HEIGHTS = { 1280: 800, 390: 844 };
const TIMEOUT_MS = 20000;

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

let browser;
let context;
let page;
let axeContext;
let settings;
let lastStatus = null;
// The main frame's navigation requests since the last `goto` or `click` (redirects included).
let trail = [];

async function start(line) {
  settings = JSON.parse(line);
  for (const key of ['chromium', 'artifacts']) {
    if (typeof settings[key] !== 'string' || !settings[key]) throw new Error(`settings \`${key}\`: must be a non-empty string`);
  }
  if (typeof settings.javascript !== 'boolean') throw new Error('settings `javascript`: must be true or false');
  fs.mkdirSync(settings.artifacts, { recursive: true });
  browser = await chromium.launch({
    executablePath: settings.chromium,
    // Headless Chromium run as root refuses to start with its sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: 60000,
  });
  context = await browser.newContext({
    javaScriptEnabled: settings.javascript,
    viewport: { width: WIDTHS[0], height: HEIGHTS[WIDTHS[0]] },
    deviceScaleFactor: 1,
    locale: 'en-GB',
  });
  context.setDefaultTimeout(TIMEOUT_MS);
  page = await context.newPage();
  page.on('request', (r) => {
    if (r.frame() === page.mainFrame() && r.isNavigationRequest()) trail.push(r.url());
  });
  page.on('response', (r) => {
    if (r.frame() === page.mainFrame() && r.request().isNavigationRequest()) lastStatus = r.status();
  });
  return { version: browser.version() };
}

async function state() {
  return {
    url: page.url(),
    status: lastStatus,
    title: await page.title(),
    html: await page.content(),
    text: await page.evaluate(() => document.body?.innerText ?? ''),
    trail,
  };
}

async function runAxe(target) {
  await target.evaluate(AXE_SOURCE);
  return target.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
}

// The page as the browser holds it, in a JavaScript-enabled context where none of its own
// scripts may run (see the header).
async function copyForAxe() {
  if (!axeContext) {
    axeContext = await browser.newContext({ javaScriptEnabled: true, deviceScaleFactor: 1 });
    axeContext.setDefaultTimeout(TIMEOUT_MS);
  }
  const html = await page.content();
  const url = page.url();
  const copy = await axeContext.newPage();
  await copy.route('**/*', (route) => {
    if (route.request().url() === url) {
      route.fulfill({
        status: 200,
        contentType: 'text/html; charset=utf-8',
        headers: { 'content-security-policy': "script-src 'none'" },
        body: html,
      });
    } else {
      route.abort();
    }
  });
  await copy.goto(url);
  return copy;
}

async function snap(name) {
  if (typeof name !== 'string' || !/^[a-z0-9-]+$/.test(name)) throw new Error('snap `name`: lowercase letters, digits and dashes');
  const files = [];
  const seen = new Map();
  const copy = settings.javascript ? null : await copyForAxe();
  try {
    for (const width of WIDTHS) {
      const size = { width, height: HEIGHTS[width] };
      await page.setViewportSize(size);
      const file = path.join(settings.artifacts, `${name}-${width}.png`);
      await page.screenshot({ path: file, fullPage: true });
      files.push(file);
      const target = copy ?? page;
      if (copy) {
        await copy.setViewportSize(size);
        // The copy must show what the page shows, or axe would judge another page.
        const [shown, copied] = await Promise.all([page, copy].map((p) => p.evaluate(() => document.body?.innerText ?? '')));
        if (shown !== copied) throw new Error(`the copy for axe differs from the page: ${JSON.stringify(copied)} vs ${JSON.stringify(shown)}`);
      }
      for (const v of await runAxe(target)) {
        const key = `${v.id} ${v.targets.join(',')}`;
        if (!seen.has(key)) seen.set(key, { ...v, width });
      }
    }
  } finally {
    await page.setViewportSize({ width: WIDTHS[0], height: HEIGHTS[WIDTHS[0]] });
    if (copy) await copy.close();
  }
  const violations = [...seen.values()];
  const report = path.join(settings.artifacts, `${name}-axe.json`);
  fs.writeFileSync(report, `${JSON.stringify({ url: page.url(), javascript: settings.javascript, violations }, null, 2)}\n`);
  files.push(report);
  return { files, violations };
}

async function click(selector, navigates) {
  trail = [];
  if (!navigates) {
    await page.click(selector);
    return { url: page.url() };
  }
  // A form post answered by redirects ends on the last page, loaded.
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  return { url: page.url(), trail };
}

async function run(cmd) {
  switch (cmd.cmd) {
    case 'goto': {
      trail = [];
      const r = await page.goto(cmd.url, { waitUntil: 'load' });
      lastStatus = r ? r.status() : lastStatus;
      return state();
    }
    case 'fill':
      await page.fill(cmd.selector, cmd.value);
      return {};
    case 'click':
      return click(cmd.selector, cmd.navigates ?? true);
    case 'state':
      return state();
    case 'visible':
      return { visible: await page.isVisible(cmd.selector) };
    case 'snap':
      return snap(cmd.name);
    case 'close':
      await browser.close();
      out({ ok: true });
      process.exit(0);
      break;
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`);
  }
  return {};
}

const lines = readline.createInterface({ input: process.stdin });
let started = false;
for await (const line of lines) {
  if (!line.trim()) continue;
  try {
    if (!started) {
      out({ ok: true, ...(await start(line)) });
      started = true;
    } else {
      out({ ok: true, ...(await run(JSON.parse(line))) });
    }
  } catch (e) {
    out({ ok: false, error: String(e?.message ?? e) });
    if (!started) process.exit(2);
  }
}
if (browser) await browser.close();
