// A request that takes 200 ms, for the reload workload: with requests in flight during a reload,
// a supervisor that stops a worker without draining it shows up as failed requests. Listens on
// process.env.PORT; slow-fd.js is the same app on fd 3.
'use strict';
const http = require('node:http');

const DELAY_MS = 200;
if (!/^\d+$/.test(process.env.PORT ?? '')) {
  console.error(`slow.js: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
const worker = process.env.WORKER_INDEX ?? process.env.NODE_APP_INSTANCE ?? String(process.pid);

http
  .createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Worker': worker });
      res.end('hello\n');
    }, DELAY_MS);
  })
  .listen(Number(process.env.PORT));
