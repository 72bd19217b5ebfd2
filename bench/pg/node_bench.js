// node-postgres client of bench/pg/run.py: QUERY SECONDS CONCURRENCY HOST(socket dir).
// A pg.Pool of CONCURRENCY connections, as many async loops running QUERY (named, so prepared);
// 1 s warm-up.
const { Pool } = require('pg');

const SQL = {
  select1: "SELECT $1::int AS a, 'hello'::text AS b",
  series: "SELECT i, 'row ' || i AS t FROM generate_series(1, 1000) AS i",
  insert: 'INSERT INTO bench_ins (a, b) VALUES ($1, $2)',
};

async function main() {
  const [query, secs, concS, host] = process.argv.slice(2);
  const seconds = parseFloat(secs), conc = parseInt(concS, 10);
  const pool = new Pool({ host, port: 5432, user: 'postgres', database: 'postgres', max: conc });
  const text = SQL[query];
  const tStart = performance.now() + 1000, tEnd = tStart + seconds * 1000;
  let counted = 0, total = 0, cpu0 = 0;
  const cpuNow = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  setTimeout(() => { cpu0 = cpuNow(); }, 1000);
  async function worker(wid) {
    for (let i = 0; ; i++) {
      const now = performance.now();
      if (now >= tEnd) return;
      const c = await pool.connect();
      try {
        let values = [];
        if (query === 'select1') values = [i & 0xffff];
        else if (query === 'insert') values = [wid, 'hello'];
        const r = await c.query({ name: 'q', text, values });
        for (const row of r.rows) { row.a; row.b; }
      } finally {
        c.release();
      }
      total++;
      if (now >= tStart) counted++;
    }
  }
  const ws = [];
  for (let w = 0; w < conc; w++) ws.push(worker(w));
  await Promise.all(ws);
  const cpu = cpuNow() - cpu0;
  await pool.end();
  console.log(`queries ${counted} seconds ${seconds.toFixed(3)} total ${total} cpu ${cpu.toFixed(4)}`);
}
main().catch((e) => { console.error(e); process.exit(1); });
