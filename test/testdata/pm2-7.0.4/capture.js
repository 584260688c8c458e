// One list from PM2's own API, printed as PM2's jlist and prettylist print it.
const pm2 = require('/tmp/pm2home-study/node_modules/pm2');
const util = require('util'), fs = require('fs');
pm2.connect(() => pm2.list((err, list) => {
  fs.writeFileSync('jlist.json', JSON.stringify(list));
  fs.writeFileSync('prettylist.txt', util.inspect(list, false, null, false));
  pm2.disconnect();
}));
