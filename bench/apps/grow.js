// Grows past LIMIT_MB, once: the first process of the app holds 4 MB more every 20 ms until it
// is LIMIT_MB + 48 MB large, and writes to MARK when its RSS first passes LIMIT_MB; every process
// writes its start there. Latency of a memory-limit restart = the second start - the crossing.
const fs = require('fs');
const mark = process.env.MARK;
const limit = Number(process.env.LIMIT_MB) * 1024 * 1024;
fs.appendFileSync(mark, `start ${Date.now()}\n`);
const starts = fs.readFileSync(mark, 'utf8').split('\n').filter((l) => l.startsWith('start')).length;
const hold = [];
let crossed = false;
setInterval(() => {
  if (starts > 1 || process.memoryUsage().rss > limit + 48 * 1024 * 1024) return;
  hold.push(Buffer.alloc(4 * 1024 * 1024, 1));
  if (!crossed && process.memoryUsage().rss > limit) {
    crossed = true;
    fs.appendFileSync(mark, `cross ${Date.now()}\n`);
  }
}, 20);
