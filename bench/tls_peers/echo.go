// Go crypto/tls echo server for bench/tls_compare.sh (GOMAXPROCS=1: one core).
//   go run echo.go PORT CERT KEY
package main

import (
	"crypto/tls"
	"os"
)

func main() {
	cert, err := tls.LoadX509KeyPair(os.Args[2], os.Args[3])
	if err != nil {
		panic(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:"+os.Args[1], &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c *tls.Conn) {
			defer c.Close()
			buf := make([]byte, 32768)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(c.(*tls.Conn))
	}
}
