// The app of hello-fd.js, listening on process.env.PORT the usual way, for the setups that bind
// for the app (PM2 cluster mode, tend). X-Worker names the instance that answered: WORKER_INDEX
// when a launcher sets it, else PM2's NODE_APP_INSTANCE, else the pid.
'use strict';
const http = require('node:http');

if (!/^\d+$/.test(process.env.PORT ?? '')) {
  console.error(`hello.js: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
const worker = process.env.WORKER_INDEX ?? process.env.NODE_APP_INSTANCE ?? String(process.pid);

http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Worker': worker });
    res.end('hello\n');
  })
  .listen(Number(process.env.PORT));
