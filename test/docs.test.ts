import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type TestContext, buildTestApp } from './support/app.js';

const run = promisify(execFile);

/** Debian's chromium (installed by .ci/run), headless, offline and without a profile of its own. */
async function renderedDom(url: string): Promise<{ dom: string; console: string }> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'kn-chromium-'));
  try {
    const { stdout, stderr } = await run(
      process.env.CHROMIUM_BIN ?? 'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        // Console messages (CSP violations among them) go to stderr.
        '--enable-logging=stderr',
        '--v=0',
        // Lets the page's script fetch the OpenAPI document and render before the DOM is taken.
        '--virtual-time-budget=15000',
        '--dump-dom',
        url,
      ],
      { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return { dom: stdout, console: stderr };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

const text = (html: string) => html.replace(/&#39;|&apos;/g, "'").replace(/&amp;/g, '&');

describe('docs: the reference page in a real browser', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp();
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(() => ctx.close());

  it('renders the API title, tags and operations from the OpenAPI document under its CSP', async () => {
    const spec = (await ctx.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    const health = spec.paths['/api/v1/health'].get.summary as string;
    const live = spec.paths['/api/v1/health/live'].get.summary as string;
    // What the server sends has none of it: only the page's script, fetching the document, can put it there.
    const html = (await ctx.app.inject({ method: 'GET', url: '/docs/' })).body;
    assert.ok(!html.includes(health) && !html.includes('section-header'));

    const { port } = ctx.app.server.address() as AddressInfo;
    const { dom, console } = await renderedDom(`http://127.0.0.1:${port}/docs/`);
    const page = text(dom);
    // assert.ok rather than match: a failure message would otherwise carry the whole DOM.
    const heading = new RegExp(`<h1[^>]*>\\s*${(spec.info.title as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*<`);
    assert.ok(heading.test(page), 'the title as the page heading: the page did not render');
    assert.ok(page.includes(`<title>${spec.info.title}</title>`));
    for (const summary of [health, live]) assert.ok(page.includes(summary), summary);
    for (const tag of spec.tags as Array<{ name: string }>) assert.ok(page.includes(`>${tag.name}<`), `tag ${tag.name}`);
    assert.doesNotMatch(console, /Content Security Policy|Refused to/, 'no CSP violation');
    // The page's icon is ours and answers (a 404 would show in the console as a failed resource).
    assert.ok(/<link[^>]+rel="(shortcut )?icon"[^>]+href="\/favicon\.svg"|<link[^>]+href="\/favicon\.svg"[^>]+rel="(shortcut )?icon"/.test(page), 'the favicon link');
    assert.doesNotMatch(console, /status of 404/, 'nothing the page loads is missing');
  });
});
