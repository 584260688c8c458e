// An ordinary Node HTTP server: nothing in it knows about tend or cluster mode.
//   PORT=3000 tend start examples/cluster-node/app.js -i max
//   curl localhost:3000        # answered by the instances in turn
//   tend reload app            # new processes, no refused or failed request
const http = require('http');

const port = Number(process.env.PORT || 3000);
http
  .createServer((req, res) => {
    res.end(`hello from instance ${process.env.NODE_APP_INSTANCE} (pid ${process.pid})\n`);
  })
  .listen(port, () => console.log(`instance ${process.env.NODE_APP_INSTANCE} listening on ${port}`));
