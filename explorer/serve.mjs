#!/usr/bin/env node
// Serves the built explorer (static files) on 127.0.0.1, pointed at a node.
//
// Usage: node serve.mjs [--dir dist] [--port 8080] [--node ws://127.0.0.1:9944]
// --node rewrites the page's node URL and its Content-Security-Policy (connect-src) from the
// default ws://127.0.0.1:9944; nothing else is changed. Only GET and HEAD of files under --dir.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
};
const dir = resolve(opt('--dir', 'dist'));
const port = Number(opt('--port', '8080'));
const node = opt('--node', 'ws://127.0.0.1:9944');
if (!/^wss?:\/\/[A-Za-z0-9.\-\[\]:]+\/?$/.test(node)) {
  console.error(`serve.mjs: --node ${node} is not a ws:// or wss:// URL of a host and port`);
  process.exit(2);
}
const DEFAULT_NODE = 'ws://127.0.0.1:9944';
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};

const server = createServer(async (req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  let path;
  try {
    path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (path.endsWith('/')) path += 'index.html';
  const file = normalize(join(dir, path));
  if (!file.startsWith(dir + sep)) {
    res.writeHead(403).end();
    return;
  }
  try {
    if (!(await stat(file)).isFile()) throw new Error('not a file');
    let body = await readFile(file);
    if (extname(file) === '.html' && node !== DEFAULT_NODE) {
      const http = node.replace(/^ws/, 'http');
      body = Buffer.from(
        body
          .toString('utf8')
          .replaceAll(DEFAULT_NODE, node)
          .replaceAll(DEFAULT_NODE.replace(/^ws/, 'http'), http),
      );
    }
    res.writeHead(200, {
      'Content-Type': types[extname(file)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`explorer: http://127.0.0.1:${server.address().port}/ (node ${node}, files ${dir})`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
