// An ordinary Node HTTP server: nothing in it knows about tend or cluster mode.
//   PORT=3001 tend start examples/cluster-node/app.js -i max --name web
//   curl localhost:3001        # answered by the instances in turn
//   tend reload web            # new processes, no refused or failed request
const http = require('http');

const port = Number(process.env.PORT || 3000);
http
  .createServer((req, res) => {
    res.end(`hello from instance ${process.env.NODE_APP_INSTANCE} (pid ${process.pid})\n`);
  })
  .listen(port, () => console.log(`instance ${process.env.NODE_APP_INSTANCE} listening on ${port}`));
