// Logs one numbered line every 10 ms ("tick 0", "tick 1", …): a number missing from its log file,
// or there twice, is a line lost or replayed. TICK_FILE, when set, names a file that always holds
// the number of the last line written to stdout, so that the harness knows how far the app got
// even when no log shows it (the line that met a dead pipe, the lines a dead reader never wrote).
'use strict';
const fs = require('node:fs');

const file = process.env.TICK_FILE;
let i = 0;
setInterval(() => {
  console.log('tick ' + i);
  if (file) {
    // Written aside and renamed: the harness never reads a half-written number.
    fs.writeFileSync(file + '.tmp', String(i));
    fs.renameSync(file + '.tmp', file);
  }
  i++;
}, 10);
