// An upstream OpenID provider for Gatehouse's integration tests: the certified `oidc-provider`
// package (pinned in package-lock.json), configured from a JSON file the test writes, with a
// minimal login and consent interaction that plain HTTP form posts can drive.
//
//   node provider.mjs CONFIG.json
//
// Prints `READY <issuer>` on stdout once it listens. Exits 2 with one line per problem when the
// configuration is bad (each naming its key), 3 with `PORT_IN_USE <port>` when the port is taken
// (the harness then tries another). Quiet otherwise: server errors always go to stderr, every
// other provider event only with `"verbose": true`.
//
// Configuration (every key but `port`, `clients` and `accounts` optional):
//   port            loopback port to listen on
//   issuer          default `http://127.0.0.1:<port>`; may have a path (`…/tenant/a`): the
//                   provider is then served under that path, as a multi-tenant provider is
//   clients         [{ client_id, client_secret, redirect_uris, token_endpoint_auth_method,
//                      backchannel_logout_uri }]
//                   method: client_secret_basic (default), client_secret_post or none;
//                   with a back-channel logout URI the client's ID tokens carry `sid`, and a
//                   sign-out at the provider (its end_session_endpoint, whose confirmation
//                   page has `<form id="logout">`) posts a logout token there
//   accounts        { "<login name>": { sub, email, email_verified, name, hd?, …any claim } }
//                   `sub` defaults to the login name; every claim is returned in the ID token
//                   (and by userinfo) for the scopes `openid email profile`
//   iss_parameter   RFC 9207 `iss` in authorization responses and its discovery flag (true)
//   refresh_tokens  issue a refresh token with every code exchange (false)
//   pkce_required   refuse authorization requests without an S256 code_challenge (true)
//   signing_alg     "RS256" (default, as Google and Microsoft sign) or "ES256"
//   verbose         print provider events (grant errors, …) to stderr (false)
//
// Test-only route, outside the issuer's path: `POST /__rotate` makes the provider sign with a
// fresh key (new `kid`) from now on, keeping the issuer, port and all state (sessions, codes,
// refresh tokens): a new Provider instance over the same storage replaces the running one. The
// previous keys stay in the JWKS (as providers publish the outgoing key for a while) unless the
// JSON body says `{"keep_previous": false}`. Answers `{"kid": "<new kid>", "kids": [...]}`.
// `POST /__disable` with `{"login": "<login name>"}` removes that account, as a directory that
// disables a person does: its sessions and refresh tokens no longer work (a refresh answers
// `invalid_grant`). Answers `{"disabled": "<sub>"}`.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'none']);
const SIGNING_ALGS = new Set(['RS256', 'ES256']);
const KNOWN_KEYS = new Set([
  'port', 'issuer', 'clients', 'accounts', 'iss_parameter', 'refresh_tokens', 'pkce_required',
  'signing_alg', 'verbose',
]);
const CLIENT_KEYS = new Set([
  'client_id', 'client_secret', 'redirect_uris', 'token_endpoint_auth_method',
  'backchannel_logout_uri',
]);
// Claims returned for each scope; any other claim of an account (`hd`, …) comes with `openid`.
const EMAIL_CLAIMS = ['email', 'email_verified'];
const PROFILE_CLAIMS = [
  'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username',
  'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
];

function fail(code, lines) {
  for (const line of lines) process.stderr.write(`${line}\n`);
  process.exit(code);
}

// Reads and checks the configuration; every problem is reported, each naming its key.
function readConfig(path) {
  let raw;
  try {
    raw = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (e) {
    fail(2, [`config ${path}: cannot read it as JSON: ${e.message}`]);
  }
  const problems = [];
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(raw)) fail(2, ['config: must be a JSON object']);
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key)) problems.push(`config: unknown key \`${key}\``);
  }
  if (!Number.isInteger(raw.port) || raw.port < 1 || raw.port > 65535) {
    problems.push('config `port`: must be an integer between 1 and 65535');
  }
  const issuer = raw.issuer ?? `http://127.0.0.1:${raw.port}`;
  let issuerUrl;
  try {
    issuerUrl = new URL(issuer);
    if (!['http:', 'https:'].includes(issuerUrl.protocol) || issuerUrl.search || issuerUrl.hash) {
      problems.push('config `issuer`: must be an http(s) URL without query or fragment');
    }
  } catch {
    problems.push('config `issuer`: not a URL');
  }
  for (const key of ['iss_parameter', 'refresh_tokens', 'pkce_required', 'verbose']) {
    if (raw[key] !== undefined && typeof raw[key] !== 'boolean') {
      problems.push(`config \`${key}\`: must be true or false`);
    }
  }
  const signingAlg = raw.signing_alg ?? 'RS256';
  if (!SIGNING_ALGS.has(signingAlg)) {
    problems.push(`config \`signing_alg\`: must be one of ${[...SIGNING_ALGS].join(', ')}`);
  }
  const clients = [];
  if (!Array.isArray(raw.clients) || raw.clients.length === 0) {
    problems.push('config `clients`: must be a non-empty array');
  } else {
    raw.clients.forEach((c, i) => {
      const at = `config \`clients[${i}]\``;
      if (!isObject(c)) {
        problems.push(`${at}: must be an object`);
        return;
      }
      for (const key of Object.keys(c)) {
        if (!CLIENT_KEYS.has(key)) problems.push(`${at}: unknown key \`${key}\``);
      }
      if (typeof c.client_id !== 'string' || !c.client_id) {
        problems.push(`${at}.client_id: must be a non-empty string`);
      }
      const method = c.token_endpoint_auth_method ?? 'client_secret_basic';
      if (!AUTH_METHODS.has(method)) {
        problems.push(`${at}.token_endpoint_auth_method: must be one of ${[...AUTH_METHODS].join(', ')}`);
      }
      if (method === 'none' && c.client_secret !== undefined) {
        problems.push(`${at}.client_secret: a client with token_endpoint_auth_method none has no secret`);
      }
      if (method !== 'none' && (typeof c.client_secret !== 'string' || c.client_secret.length < 8)) {
        problems.push(`${at}.client_secret: must be a string of at least 8 characters`);
      }
      if (!Array.isArray(c.redirect_uris) || c.redirect_uris.length === 0
        || !c.redirect_uris.every((u) => typeof u === 'string' && URL.canParse(u))) {
        problems.push(`${at}.redirect_uris: must be a non-empty array of absolute URLs`);
      }
      if (c.backchannel_logout_uri !== undefined
        && (typeof c.backchannel_logout_uri !== 'string' || !URL.canParse(c.backchannel_logout_uri))) {
        problems.push(`${at}.backchannel_logout_uri: must be an absolute URL`);
      }
      clients.push({ ...c, token_endpoint_auth_method: method });
    });
  }
  const accounts = new Map(); // login name -> claims (with sub)
  if (!isObject(raw.accounts) || Object.keys(raw.accounts).length === 0) {
    problems.push('config `accounts`: must be a non-empty object (login name -> claims)');
  } else {
    const subs = new Set();
    for (const [login, claims] of Object.entries(raw.accounts)) {
      const at = `config \`accounts.${login}\``;
      if (!isObject(claims)) {
        problems.push(`${at}: must be an object of claims`);
        continue;
      }
      const sub = claims.sub ?? login;
      if (typeof sub !== 'string' || !sub) problems.push(`${at}.sub: must be a non-empty string`);
      if (subs.has(sub)) problems.push(`${at}.sub: \`${sub}\` is another account's sub`);
      subs.add(sub);
      if (claims.email_verified !== undefined && typeof claims.email_verified !== 'boolean') {
        problems.push(`${at}.email_verified: must be true or false`);
      }
      accounts.set(login, { ...claims, sub });
    }
  }
  if (problems.length) fail(2, problems);
  return {
    port: raw.port,
    issuer,
    // Without a trailing slash: `/tenant/a/` and `/tenant/a` serve the same provider.
    prefix: issuerUrl.pathname.replace(/\/+$/, ''),
    clients,
    accounts,
    issParameter: raw.iss_parameter ?? true,
    refreshTokens: raw.refresh_tokens ?? false,
    pkceRequired: raw.pkce_required ?? true,
    signingAlg,
    verbose: raw.verbose ?? false,
  };
}

function newSigningKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: crypto.randomBytes(12).toString('base64url') };
}

// The package's own in-memory storage, under another name: its storage is per process, so the
// instance that replaces the running one at a key rotation sees every session, code and token.
// (Named apart only because the package warns when its default adapter is left unconfigured.)
class SharedMemoryAdapter extends MemoryAdapter {}

const config = readConfig(process.argv[2] ?? fail(2, ['usage: node provider.mjs CONFIG.json']));
const accountsBySub = new Map([...config.accounts.values()].map((c) => [c.sub, c]));
const extraClaims = [...new Set([...config.accounts.values()].flatMap(Object.keys))]
  .filter((k) => k !== 'sub' && !EMAIL_CLAIMS.includes(k) && !PROFILE_CLAIMS.includes(k));
// Cookie signing keys shared by every instance, so that a rotation keeps browser sessions.
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

function buildProvider(keys) {
  const provider = new Provider(config.issuer, {
    adapter: SharedMemoryAdapter,
    jwks: { keys },
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      ...(c.client_secret !== undefined ? { client_secret: c.client_secret } : {}),
      redirect_uris: c.redirect_uris,
      token_endpoint_auth_method: c.token_endpoint_auth_method,
      response_types: ['code'],
      grant_types: config.refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
      id_token_signed_response_alg: config.signingAlg,
      ...(c.backchannel_logout_uri !== undefined
        ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: true }
        : {}),
    })),
    claims: {
      openid: ['sub', ...extraClaims],
      email: EMAIL_CLAIMS,
      profile: PROFILE_CLAIMS,
    },
    // The ID token carries the scopes' claims (as Google's and Microsoft's do), not only userinfo.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const claims = accountsBySub.get(sub);
      if (!claims) return undefined;
      return { accountId: sub, async claims() { return { ...claims }; } };
    },
    pkce: { methods: ['S256'], required: () => config.pkceRequired },
    async issueRefreshToken(_ctx, client) {
      return config.refreshTokens && client.grantTypeAllowed('refresh_token');
    },
    interactions: {
      url: (_ctx, interaction) => `${config.prefix}/interaction/${interaction.uid}`,
    },
    cookies: { keys: cookieKeys },
    clientBasedCORS: () => false,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // The package's form (hidden `xsrf`) inside one the tests find by its id.
        async logoutSource(ctx, form) {
          ctx.body = `<!doctype html><html><head><title>Sign out</title></head><body>${form.replace('id="op.logoutForm"', 'id="logout"')}<button form="logout" name="logout" value="yes">Sign out</button></body></html>`;
        },
      },
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (config.issParameter) return;
    // RFC 9207 off: oidc-provider always adds `iss` to authorization responses and advertises
    // it; a provider without RFC 9207 does neither.
    if (ctx.body && typeof ctx.body === 'object' && 'authorization_response_iss_parameter_supported' in ctx.body) {
      delete ctx.body.authorization_response_iss_parameter_supported;
    }
    const location = ctx.response.get('location');
    if (location && URL.canParse(location)) {
      const url = new URL(location);
      const target = `${url.origin}${url.pathname}`;
      if (config.clients.some((c) => c.redirect_uris.includes(target))) {
        url.searchParams.delete('iss');
        ctx.set('location', url.href);
      }
    }
  });
  provider.on('server_error', (_ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));
  if (config.verbose) {
    for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'jwks.error',
      'introspection.error', 'revocation.error', 'end_session.error']) {
      provider.on(event, (_ctx, err) => process.stderr.write(`${event}: ${err.message} ${err.error_description ?? ''}\n`));
    }
    provider.on('grant.success', () => process.stderr.write('grant.success\n'));
  }
  return provider;
}

let keys = [newSigningKey(config.signingAlg)];
let provider = buildProvider(keys);
let callback = provider.callback();

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, body) {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(`<!doctype html><html><head><title>${esc(title)}</title></head><body>${body}</body></html>`);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const readForm = async (req) => new URLSearchParams(await readBody(req));

// GET <prefix>/interaction/<uid>: a login form (field `account`: the login name) or a consent
// form, told apart by the form's id; POST …/login, …/confirm or …/abort (access_denied).
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    page(res, 400, 'Bad interaction', '<p id="error">interaction does not match the cookie</p>');
    return;
  }
  const base = `${config.prefix}/interaction/${uid}`;
  const { prompt, params } = details;
  if (req.method === 'GET' && action === undefined) {
    const form = prompt.name === 'login'
      ? `<form id="login" method="post" action="${esc(base)}/login"><label>Account <input name="account"></label><button>Sign in</button></form>`
      : `<form id="consent" method="post" action="${esc(base)}/confirm"><p>Allow ${esc(params.client_id)} to see ${esc(params.scope)}?</p><button>Allow</button></form>`;
    page(res, 200, prompt.name, `${form}<form id="abort" method="post" action="${esc(base)}/abort"><button>Cancel</button></form>`);
    return;
  }
  if (req.method !== 'POST') {
    page(res, 405, 'Method not allowed', '<p id="error">method not allowed</p>');
    return;
  }
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'the end-user cancelled the sign-in',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'login' && prompt.name === 'login') {
    const login = (await readForm(req)).get('account') ?? '';
    const claims = config.accounts.get(login);
    if (!claims) {
      page(res, 400, 'Unknown account', `<p id="error">unknown account ${esc(login)}</p>`);
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: claims.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    const { accountId } = details.session;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  page(res, 400, 'Wrong step', `<p id="error">this interaction asks for ${esc(prompt.name)}, not ${esc(action)}</p>`);
}

async function rotate(req, res) {
  const body = await readBody(req);
  let keepPrevious = true;
  if (body.trim()) {
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== 'object' || Object.keys(parsed).some((k) => k !== 'keep_previous')
      || (parsed.keep_previous !== undefined && typeof parsed.keep_previous !== 'boolean')) {
      res.statusCode = 400;
      res.end('body must be {"keep_previous": true|false}\n');
      return;
    }
    keepPrevious = parsed.keep_previous ?? true;
  }
  // oidc-provider signs with the first key of the set that fits the algorithm.
  const fresh = newSigningKey(config.signingAlg);
  keys = keepPrevious ? [fresh, ...keys] : [fresh];
  provider = buildProvider(keys);
  callback = provider.callback();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ kid: fresh.kid, kids: keys.map((k) => k.kid) }));
}

const interactionPath = new RegExp(`^${config.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/interaction/([A-Za-z0-9_-]+)(?:/(login|confirm|abort))?$`);

const server = http.createServer(async (req, res) => {
  try {
    const path = req.url.split('?')[0];
    if (path === '/__rotate' && req.method === 'POST') {
      await rotate(req, res);
      return;
    }
    if (path === '/__disable' && req.method === 'POST') {
      let login;
      try {
        login = JSON.parse(await readBody(req)).login;
      } catch {
        login = undefined;
      }
      const claims = config.accounts.get(login);
      if (!claims) {
        res.statusCode = 400;
        res.end('body must be {"login": "<a configured login name>"}\n');
        return;
      }
      accountsBySub.delete(claims.sub);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ disabled: claims.sub }));
      return;
    }
    const m = interactionPath.exec(path);
    if (m) {
      await interaction(req, res, m[1], m[2]);
      return;
    }
    if (config.prefix) {
      if (path !== config.prefix && !path.startsWith(`${config.prefix}/`)) {
        page(res, 404, 'Not found', '<p id="error">not found</p>');
        return;
      }
      // As a mounting framework does: the provider reads its mount path from `originalUrl`.
      req.originalUrl = req.url;
      req.url = req.url.slice(config.prefix.length) || '/';
    }
    callback(req, res);
  } catch (err) {
    // interactionDetails throws SessionNotFound without the interaction cookie.
    const status = err.statusCode ?? 500;
    if (status >= 500) process.stderr.write(`interaction error: ${err.stack}\n`);
    if (!res.headersSent) page(res, status, 'Error', `<p id="error">${esc(err.message)}</p>`);
  }
});

server.on('error', (err) => {
  if (err.code === 'EADDRINUSE') fail(3, [`PORT_IN_USE ${config.port}`]);
  fail(1, [`listen on 127.0.0.1:${config.port}: ${err.message}`]);
});
server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`READY ${config.issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
