// A slow logger for the line latency workload: a line every 50 ms holding the wall time it was
// written at, in microseconds, then END after 100 lines.
'use strict';
let n = 0;
const tick = () => {
  const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
  console.log(`t=${us}`);
  if (++n < 100) setTimeout(tick, 50);
  else setTimeout(() => console.log('END'), 50);
};
setTimeout(tick, 500);
setInterval(() => {}, 1000);
