// A tiny HTTP app to try tend with: tend start examples/hello/app.js
const http = require('http');

const port = Number(process.env.PORT || 3000);
const server = http.createServer((req, res) => {
  res.end(`hello from instance ${process.env.NODE_APP_INSTANCE} (pid ${process.pid})\n`);
});
server.listen(port, () => {
  console.log(`listening on port ${port}`);
  if (process.send) process.send('ready');
});
setInterval(() => console.log(`still serving on ${port}`), 10000).unref();
process.on('SIGINT', () => {
  console.log('SIGINT received, closing');
  server.close(() => process.exit(0));
});
