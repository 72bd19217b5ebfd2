// pgx (v4) client of bench/pg/run.py: QUERY SECONDS CONCURRENCY HOST(socket dir).
// A pgxpool of CONCURRENCY connections, as many goroutines running QUERY in a loop (pgx
// prepares and caches statements); 1 s warm-up. Run with GOMAXPROCS=1 (client on one core).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v4/pgxpool"
)

var sqls = map[string]string{
	"select1": "SELECT $1::int AS a, 'hello'::text AS b",
	"series":  "SELECT i, 'row ' || i AS t FROM generate_series(1, 1000) AS i",
	"insert":  "INSERT INTO bench_ins (a, b) VALUES ($1, $2)",
}

func main() {
	query := os.Args[1]
	seconds, _ := strconv.ParseFloat(os.Args[2], 64)
	conc, _ := strconv.Atoi(os.Args[3])
	host := os.Args[4]
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres", host))
	if err != nil {
		panic(err)
	}
	cfg.MaxConns = int32(conc)
	cfg.MinConns = int32(conc)
	pool, err := pgxpool.ConnectConfig(ctx, cfg)
	if err != nil {
		panic(err)
	}
	sql := sqls[query]
	tStart := time.Now().Add(time.Second)
	tEnd := tStart.Add(time.Duration(seconds * float64(time.Second)))
	var counted, total int64
	cpuNow := func() float64 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	var cpu0 float64
	cpuMarked := make(chan struct{})
	go func() { time.Sleep(time.Until(tStart)); cpu0 = cpuNow(); close(cpuMarked) }()
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(wid int) {
			defer wg.Done()
			for i := 0; ; i++ {
				now := time.Now()
				if !now.Before(tEnd) {
					return
				}
				switch query {
				case "insert":
					if _, err := pool.Exec(ctx, sql, wid, "hello"); err != nil {
						panic(err)
					}
				default:
					var rows interface {
						Next() bool
						Scan(...interface{}) error
						Close()
						Err() error
					}
					var err error
					if query == "series" {
						rows, err = pool.Query(ctx, sql)
					} else {
						rows, err = pool.Query(ctx, sql, i&0xffff)
					}
					if err != nil {
						panic(err)
					}
					var a int32
					var b string
					for rows.Next() {
						if err := rows.Scan(&a, &b); err != nil {
							panic(err)
						}
					}
					rows.Close()
					if rows.Err() != nil {
						panic(rows.Err())
					}
				}
				atomic.AddInt64(&total, 1)
				if !now.Before(tStart) {
					atomic.AddInt64(&counted, 1)
				}
			}
		}(w)
	}
	wg.Wait()
	<-cpuMarked
	cpu := cpuNow() - cpu0
	pool.Close()
	fmt.Printf("queries %d seconds %.3f total %d cpu %.4f\n", counted, seconds, total, cpu)
}
