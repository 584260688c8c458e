// Floods stdout as fast as it takes lines, 1000 a write, for FLOOD_SECONDS (6 by default),
// then idles: the noisy neighbour of workload 10's quiet app.
const until = Date.now() + 1000 * Number(process.env.FLOOD_SECONDS || 6);
const pad = 'x'.repeat(53);
let i = 0;
const write = () => {
  while (Date.now() < until) {
    let s = '';
    for (let k = 0; k < 1000; k++, i++) s += 'line ' + String(i).padStart(9, '0') + ' ' + pad + '\n';
    if (!process.stdout.write(s)) return process.stdout.once('drain', write);
  }
  setInterval(() => {}, 1 << 30);
};
write();
