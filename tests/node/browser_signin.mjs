// A real browser through the hosted pages: headless Debian Chromium, driven by playwright-core,
// signs a user in for a SPA (public client, PKCE S256 computed here), allows consent if asked,
// and is sent back to the SPA's loopback redirect URI, where the code and state are read off
// the request (a stand-in page is served there, so that the last screenshot shows the browser
// arrived). Then, as the SPA would, the code is exchanged at
// /oauth2/token with fetch (form body, client_id, code_verifier), and once more to see the
// replay refused. Every page visited is screenshotted into SCREENSHOT_DIR.
//
// Run by tests/tests/oauth_clients.rs with the environment: MGPASS_URL, CLIENT_ID,
// REDIRECT_URI, USERNAME, PASSWORD, SCOPE, CHROMIUM (the browser binary), SCREENSHOT_DIR.
// Prints one JSON object on stdout; exits non-zero with the reason on stderr.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
};
const issuer = env('MGPASS_URL');
const clientId = env('CLIENT_ID');
const redirectUri = env('REDIRECT_URI');
const shotDir = env('SCREENSHOT_DIR');
mkdirSync(shotDir, { recursive: true });

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const verifier = b64url(randomBytes(32));
const challenge = b64url(createHash('sha256').update(verifier).digest());
const state = b64url(randomBytes(16));
const nonce = b64url(randomBytes(16));

const authorize = new URL('/oauth2/authorize', issuer);
for (const [k, v] of Object.entries({
  response_type: 'code',
  client_id: clientId,
  redirect_uri: redirectUri,
  scope: env('SCOPE'),
  state,
  nonce,
  code_challenge: challenge,
  code_challenge_method: 'S256',
})) {
  authorize.searchParams.set(k, v);
}

// As root (the tests may run so) Chromium needs --no-sandbox; the rest keep it from reaching
// for Google's services, which this machine's network refuses.
const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const screenshots = [];
const pages = [];
let page;
let spaServer;
const shot = async (name) => {
  const file = path.join(shotDir, `spa-signin-${String(screenshots.length + 1).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
};

try {
  const context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(30_000); // generous: the tests share two cores

  // The redirect to the SPA: read off the browser's request to it (playwright does not route
  // the target of a redirect), and answered by a stand-in page on the redirect URI's port.
  let sawCallback;
  const callback = new Promise((resolve) => (sawCallback = resolve));
  page.on('request', (req) => {
    if (req.url().startsWith(redirectUri)) sawCallback(req.url());
  });
  const spa = new URL(redirectUri);
  spaServer = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>SPA</title><h1>Back at the SPA</h1><p>The code is in the address.</p>');
  });
  await new Promise((resolve, reject) => {
    spaServer.once('error', reject);
    spaServer.listen(Number(spa.port), spa.hostname, resolve);
  });
  page.on('framenavigated', (frame) => {
    if (frame !== page.mainFrame()) return;
    const u = new URL(frame.url());
    if (u.origin === new URL(issuer).origin) pages.push(u.pathname + u.search);
  });

  await page.goto(authorize.href);
  if (!new URL(page.url()).pathname.startsWith('/oauth2/signin')) {
    throw new Error(`expected the sign-in page, got ${page.url()}`);
  }
  await shot('signin');

  await page.getByLabel(/email/i).fill(env('USERNAME'));
  await page.getByLabel('Password', { exact: true }).fill(env('PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  const consentShown = await Promise.race([
    callback.then(() => false),
    page.waitForURL((u) => u.pathname === '/oauth2/consent').then(() => true),
  ]);
  if (consentShown) {
    await page.waitForLoadState();
    await shot('consent');
    await page.getByRole('button', { name: 'Allow' }).click();
  }
  const callbackUrl = new URL(
    await Promise.race([
      callback,
      new Promise((_, reject) => setTimeout(() => reject(new Error('never sent back to the SPA')), 30_000).unref()),
    ]),
  );
  await page.waitForLoadState().catch(() => {});
  await shot('callback');

  const params = Object.fromEntries(callbackUrl.searchParams);
  if (params.error) throw new Error(`authorization failed: ${JSON.stringify(params)}`);
  if (!params.code) throw new Error(`no code in ${callbackUrl}`);

  const exchange = () =>
    fetch(new URL('/oauth2/token', issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.code,
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: verifier,
      }),
    });
  const first = await exchange();
  const token = await first.json();
  const replay = await exchange();

  process.stdout.write(
    JSON.stringify({
      pages,
      screenshots,
      callback: { iss: params.iss ?? null, state_matches: params.state === state, has_code: true },
      nonce,
      token_status: first.status,
      token,
      replay_status: replay.status,
      replay_error: (await replay.json().catch(() => ({}))).error ?? null,
    }) + '\n',
  );
} catch (err) {
  console.error(`browser_signin failed: ${err?.stack ?? err}`);
  if (page) {
    console.error(`at ${page.url()}`);
    await shot('failure').catch(() => {});
    console.error(await page.content().catch(() => ''));
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  spaServer?.close();
}
