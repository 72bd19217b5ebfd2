// Node's side of weft-curl's benchmark: INFLIGHT async workers make N GETs of URL in all with
// the built-in fetch (undici; keep-alive by default).   node client.mjs URL [N] [INFLIGHT]
const [url, nArg, infArg] = process.argv.slice(2);
const n = Number(nArg ?? 10000), inflight = Number(infArg ?? 100);
let next = 0, done = 0, bad = 0, bytes = 0;
const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
async function worker() {
  while (next++ < n) {
    try {
      const r = await fetch(url);
      const b = await r.arrayBuffer();
      bytes += b.byteLength;
      if (r.status !== 200) bad++;
    } catch (e) {
      bad++;
    }
    done++;
  }
}
await Promise.all(Array.from({ length: inflight }, worker));
const c = process.cpuUsage(c0), wall = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = (c.user + c.system) / 1e6;
console.log(`node requests=${done} errors=${bad} bytes=${bytes} wall_s=${wall.toFixed(3)} ` +
            `cpu_s=${cpu.toFixed(3)} cpu_us_per_req=${(cpu * 1e6 / done).toFixed(2)}`);
process.exit(bad ? 1 : 0);
