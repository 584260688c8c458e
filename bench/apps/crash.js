// A crash-looping app for the crash storm workload: it notes its start in $STORM_LOG, works the
// CPU for 300 ms as an app that loads its code does, then exits 1. Forty of them on two cores each
// take over a second to die: no run is shorter than PM2's min_uptime, so none counts as unstable.
'use strict';
const fs = require('node:fs');

fs.appendFileSync(process.env.STORM_LOG, `${process.env.STORM_APP}\n`);
const end = Date.now() + 300;
while (Date.now() < end) {
  // busy, as a require() of a large app is
}
process.exit(1);
