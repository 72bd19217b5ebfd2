// Go net/http's side of weft-curl's benchmark: INFLIGHT goroutines share one Client (keep-alive,
// MaxConnsPerHost = INFLIGHT) and make N GETs of URL in all; run with GOMAXPROCS=1 (one core).
//   go run client.go URL [N] [INFLIGHT]
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func cpu() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func main() {
	url := os.Args[1]
	n, inflight := int64(10000), 100
	if len(os.Args) > 2 {
		n, _ = strconv.ParseInt(os.Args[2], 10, 64)
	}
	if len(os.Args) > 3 {
		inflight, _ = strconv.Atoi(os.Args[3])
	}
	tr := &http.Transport{MaxIdleConns: inflight, MaxIdleConnsPerHost: inflight, MaxConnsPerHost: inflight}
	client := &http.Client{Transport: tr}
	var next, done, bad, bytes int64
	c0, t0 := cpu(), time.Now()
	var wg sync.WaitGroup
	for i := 0; i < inflight; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= n {
				resp, err := client.Get(url)
				atomic.AddInt64(&done, 1)
				if err != nil {
					atomic.AddInt64(&bad, 1)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					atomic.AddInt64(&bad, 1)
				}
				atomic.AddInt64(&bytes, int64(len(b)))
			}
		}()
	}
	wg.Wait()
	wall, c := time.Since(t0).Seconds(), cpu()-c0
	fmt.Printf("go requests=%d errors=%d bytes=%d wall_s=%.3f cpu_s=%.3f cpu_us_per_req=%.2f\n",
		done, bad, bytes, wall, c, c*1e6/float64(done))
	if bad != 0 {
		os.Exit(1)
	}
}
