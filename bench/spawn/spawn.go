// Go's os/exec: exec.Command("/bin/true").Run(), `seq` one at a time, `par` 64 goroutines.
// Usage as weft-bench-spawn. Build: go build -o spawn-go spawn.go
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// cpuSeconds: CPU time used so far by this process and its reaped children (user + system).
func cpuSeconds() float64 {
	t := 0.0
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		syscall.Getrusage(who, &ru)
		t += float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	return t
}

func main() {
	mode := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	heapMiB, _ := strconv.Atoi(os.Args[3])
	var mem []byte
	if heapMiB > 0 {
		mem = make([]byte, heapMiB<<20)
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
	}
	workers := 1
	if mode == "par" {
		workers = 64
	}
	var left int64 = int64(n)
	var wg sync.WaitGroup
	cpu0 := cpuSeconds()
	t0 := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&left, -1) >= 0 {
				if err := exec.Command("/bin/true").Run(); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	us := float64(time.Since(t0).Nanoseconds()) / 1e3 / float64(n)
	cpu := (cpuSeconds() - cpu0) * 1e6 / float64(n)
	fmt.Printf("go %s heap=%d n=%d wall %.1f cpu %.1f us/spawn\n", mode, heapMiB, n, us, cpu)
	if len(mem) > 0 && mem[0] != 1 {
		panic("heap")
	}
}
