// The explorer is plain static files: `vite build` bundles the page, its scripts, its styles and
// the WASM verifier into dist/. Nothing is loaded from anywhere else at run time.
//
// The node it reads defaults to ws://127.0.0.1:9944; SIGIL_NODE_URL at build time sets another
// (the Content-Security-Policy's connect-src follows it), and serve.mjs --node sets it per run.
import { defineConfig } from 'vite';

const DEFAULT_NODE = 'ws://127.0.0.1:9944';

export default defineConfig({
  base: './',
  build: {
    target: 'es2022',
    outDir: 'dist',
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2048,
  },
  plugins: [
    {
      name: 'sigil-node-url',
      transformIndexHtml(html) {
        const node = process.env.SIGIL_NODE_URL;
        if (!node || node === DEFAULT_NODE) return html;
        const http = node.replace(/^ws/, 'http');
        return html
          .replaceAll(DEFAULT_NODE, node)
          .replaceAll(DEFAULT_NODE.replace(/^ws/, 'http'), http);
      },
    },
  ],
});
