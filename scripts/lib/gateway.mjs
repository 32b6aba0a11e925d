// The local API gateway (what Kong is on Supabase): one port, /rest/v1/* to PostgREST,
// /functions/v1/<name> to the Deno function server. Like Supabase's gateway it asks for
// an `apikey` header on REST calls and answers CORS preflights, so
// createClient(SUPABASE_URL, SUPABASE_ANON_KEY) works unchanged.
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';
import { portalHandler } from './portal-static.mjs';

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
  'access-control-allow-headers': 'authorization, x-client-info, apikey, content-type, prefer, range, accept-profile, content-profile, x-supabase-api-version',
  'access-control-expose-headers': 'content-range, content-location, x-supabase-api-version',
  'access-control-max-age': '3600',
};

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', ...CORS });
  res.end(JSON.stringify(body));
}

/**
 * Start the gateway. `routes.rest` is PostgREST's base URL; `routes.functions` maps a
 * function name to its base URL. `apiKeys` are the keys accepted in the apikey header.
 * `portal` ({ dir, anonKey }, optional) serves the standalone portal page at /portal.
 * Resolves to the listening http.Server.
 */
export function startGateway({ port, host = '127.0.0.1', routes, apiKeys, portal }) {
  const servePortal = portal ? portalHandler(portal) : null;
  const proxy = createProxyServer({ xfwd: true, proxyTimeout: 180_000 });
  proxy.on('proxyRes', (proxyRes) => Object.assign(proxyRes.headers, CORS));
  proxy.on('error', (err, _req, res) => {
    if (res && 'writeHead' in res && !res.headersSent) reply(res, 502, { message: `upstream unavailable: ${err.message}` });
    else res?.end?.();
  });

  const server = http.createServer((req, res) => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS);
      return res.end();
    }
    const url = new URL(req.url ?? '/', 'http://gateway');

    if (url.pathname.startsWith('/rest/v1')) {
      const apikey = req.headers.apikey ?? url.searchParams.get('apikey');
      if (!apikey) return reply(res, 401, { message: 'No API key found in request' });
      if (!apiKeys.includes(apikey)) return reply(res, 401, { message: 'Invalid API key' });
      // Forward the parsed path (not the raw one), so `..` cannot step outside the route.
      req.url = (url.pathname.slice('/rest/v1'.length) || '/') + url.search;
      return proxy.web(req, res, { target: routes.rest });
    }

    const fn = /^\/functions\/v1\/([^/?]+)/.exec(url.pathname);
    if (fn) {
      const target = routes.functions?.[fn[1]];
      if (!target) return reply(res, 404, { message: `function ${fn[1]} not found` });
      req.url = (url.pathname.slice(fn[0].length) || '/') + url.search;
      return proxy.web(req, res, { target });
    }

    if (servePortal && (url.pathname === '/portal' || url.pathname.startsWith('/portal/'))) {
      return servePortal(req, res, url.pathname);
    }

    if (url.pathname === '/' || url.pathname === '/health') return reply(res, 200, { status: 'ok' });
    return reply(res, 404, { message: 'no route: use /rest/v1/* or /functions/v1/<name>' });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
