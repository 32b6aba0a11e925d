// The standalone portal page behind the gateway at /portal (what `npm start` serves at
// SUPABASE_URL/portal): the files Vite built into dist/portal-app, the anon key written into
// the page (never another key), and headers that keep it to itself: a strict CSP (scripts,
// styles and requests to this origin only, no inline code, no framing), no referrer, no
// MIME sniffing. Every path under /portal that is not a file is the page (client routes).
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

export const PORTAL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  // No string ever becomes markup or code through a DOM sink (innerHTML, eval, ...).
  "require-trusted-types-for 'script'",
].join('; ');

export const PORTAL_HEADERS = {
  'content-security-policy': PORTAL_CSP,
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

const escapeAttribute = (value) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A request handler for /portal and below. `dir` is the built page (dist/portal-app),
 * `anonKey` the key the page sends as apikey. Returns (req, res, pathname) => void.
 */
export function portalHandler({ dir, anonKey }) {
  if (!anonKey || /service_role/.test(Buffer.from(anonKey.split('.')[1] ?? '', 'base64url').toString())) {
    throw new Error('the portal page gets the anon key, never the service-role key');
  }
  const root = path.resolve(dir);
  let page = null; // index.html with the key in, read once per build

  const send = (res, status, headers, body) => {
    res.writeHead(status, { ...PORTAL_HEADERS, ...headers });
    res.end(body);
  };

  return (req, res, pathname) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, 'method not allowed\n');
    }
    const index = path.join(root, 'index.html');
    if (!fs.existsSync(index)) {
      return send(res, 503, { 'content-type': 'text/plain; charset=utf-8' }, 'The portal is not built: run `npm run build` (npm start does it).\n');
    }
    const relative = pathname.replace(/^\/portal\/?/, '');
    // Hashed assets: served as they are, cached for good. Anything else is the page.
    if (relative.startsWith('assets/')) {
      const file = path.resolve(root, relative);
      if (!file.startsWith(`${root}${path.sep}`) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        return send(res, 404, { 'content-type': 'text/plain; charset=utf-8' }, 'not found\n');
      }
      const body = fs.readFileSync(file);
      return send(res, 200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': 'public, max-age=31536000, immutable',
        'content-length': body.length,
      }, req.method === 'HEAD' ? undefined : body);
    }
    const stat = fs.statSync(index);
    if (!page || page.mtimeMs !== stat.mtimeMs) {
      const html = fs.readFileSync(index, 'utf8').replace(
        /<meta name="serial-webhooks-anon-key" content="[^"]*"\s*\/?>/,
        `<meta name="serial-webhooks-anon-key" content="${escapeAttribute(anonKey)}" />`,
      );
      page = { mtimeMs: stat.mtimeMs, body: Buffer.from(html) };
    }
    return send(res, 200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': page.body.length,
    }, req.method === 'HEAD' ? undefined : page.body);
  };
}
