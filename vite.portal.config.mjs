// Vite build of the standalone portal page (src/portal-app) into dist/portal-app, served by
// the local gateway at /portal. It bundles the BUILT package (dist/, made by tsc first), so
// the page is the component exactly as `@serial/webhooks/portal` ships it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  // Always the production build (React's production bundle), whoever calls it: under vitest
  // NODE_ENV is "test", which made Vite bundle React's development build (40 % larger).
  mode: 'production',
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  root: path.join(root, 'src', 'portal-app'),
  base: '/portal/',
  logLevel: 'warn',
  resolve: {
    alias: [
      { find: /^@serial\/webhooks\/portal\/styles\.css$/, replacement: path.join(root, 'dist', 'portal', 'styles.css') },
      { find: /^@serial\/webhooks\/portal$/, replacement: path.join(root, 'dist', 'portal', 'index.js') },
    ],
  },
  // jsxDev off too: Vite turns it on whenever NODE_ENV is not "production" (vitest's "test"),
  // and React's production bundle has no jsxDEV (the page then throws at start).
  esbuild: { jsx: 'automatic', jsxDev: false },
  build: {
    outDir: path.join(root, 'dist', 'portal-app'),
    emptyOutDir: true,
    target: 'es2022',
    // No inline <script>/<style> and no data: modules: the page's CSP allows 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    sourcemap: false,
  },
});
