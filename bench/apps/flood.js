// Log flood: 1,000,000 lines of 67 bytes as fast as stdout takes them, then END.
// FLOOD_LINES=1: one console.log per line (a write(2) each, as a chatty app does);
// otherwise 1000 lines per write.
const N = 1e6;
const pad = 'x'.repeat(53);
const line = (i) => 'line ' + String(i).padStart(7, '0') + ' ' + pad;

if (process.env.FLOOD_LINES === '1') {
  for (let i = 0; i < N; i++) console.log(line(i));
  console.log('END');
} else {
  let i = 0;
  const write = () => {
    let ok = true;
    while (i < N && ok) {
      let s = '';
      for (let k = 0; k < 1000 && i < N; k++, i++) s += line(i) + '\n';
      ok = process.stdout.write(s);
    }
    if (i < N) process.stdout.once('drain', write);
    else process.stdout.write('END\n');
  };
  write();
}
