// Hello-world HTTP server for the "direct" baseline (bench/direct): it serves on the listening
// socket the launcher hands over as fd 3, so no Node cluster primary or process manager sits
// between the kernel and the app. X-Worker tells a client which worker answered, so a test can
// check that SO_REUSEPORT spread connections over every worker.
'use strict';
const http = require('node:http');

const worker = process.env.WORKER_INDEX ?? '0';

http
  .createServer((req, res) => {
    // end() with the whole body lets Node send Content-Length, so keep-alive works.
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Worker': worker });
    res.end('hello\n');
  })
  .listen({ fd: 3 });
