// Node's fs.promises peer of bench/files.c: node node.mjs rand4k|seq1m DEPTH SECS FILE
import { open } from 'node:fs/promises';

const [mode, depthS, secsS, path] = process.argv.slice(2);
const depth = +depthS, secs = +secsS;
const seq = mode === 'seq1m';
const bs = seq ? 1 << 20 : 4096;
const fh = await open(path, 'r');
const nblocks = Math.floor((await fh.stat()).size / bs);
let next = 0, ops = 0;
const t0 = process.hrtime.bigint();
const end = t0 + BigInt(Math.round(secs * 1e9));

async function worker(seed) {
  const buf = Buffer.allocUnsafe(bs);
  let x = seed * 2654435761 >>> 0 || 1;
  let n = 0;
  for (;;) {
    let blk;
    if (seq) { blk = next++; if (next === nblocks) next = 0; }
    else { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; blk = x % nblocks; }
    const { bytesRead } = await fh.read(buf, 0, bs, blk * bs);
    if (bytesRead !== bs) throw new Error('short read');
    n++;
    if ((n & 15) === 0 && process.hrtime.bigint() >= end) break;
  }
  ops += n;
}

await Promise.all(Array.from({ length: depth }, (_, i) => worker(i + 1)));
const el = Number(process.hrtime.bigint() - t0) / 1e9;
const iops = ops / el;
console.log(`RESULT depth=${depth} iops=${iops.toFixed(0)} mib_s=${(iops * bs / 1048576).toFixed(1)}`);
await fh.close();
