// Node tls echo server for bench/tls_compare.sh (one process, one thread).
//   node echo.js PORT CERT KEY
const tls = require('tls');
const fs = require('fs');
const [port, cert, key] = process.argv.slice(2);
tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (s) => {
  s.on('data', (d) => s.write(d));
  s.on('error', () => s.destroy());
  s.on('end', () => s.end());
}).listen(+port, '127.0.0.1');
