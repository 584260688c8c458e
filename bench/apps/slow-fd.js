// slow.js on the listening socket handed over as fd 3 (bench/direct): each request is answered
// after 200 ms, so a reload has requests in flight.
'use strict';
const http = require('node:http');

const DELAY_MS = 200;
const worker = process.env.WORKER_INDEX ?? '0';

http
  .createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Worker': worker });
      res.end('hello\n');
    }, DELAY_MS);
  })
  .listen({ fd: 3 });
