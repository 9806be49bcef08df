// referrers-registry serves an in-memory OCI registry that implements the referrers API
// (GET /v2/<name>/referrers/<digest>), which Debian's docker-registry 2.8 lacks: the registry of
// github.com/google/go-containerregistry/pkg/registry with referrers support switched on.
// Verdict's tests run it as a child process on a loopback port (dev-only; never shipped).
//
// Usage: referrers-registry [-addr 127.0.0.1:0]
// Prints "listening on <host:port>" once it accepts connections.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	verbose := flag.Bool("v", false, "log every request to stderr")
	flag.Parse()

	logger := log.New(io.Discard, "", 0)
	if *verbose {
		logger = log.New(os.Stderr, "referrers-registry ", log.LstdFlags)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "referrers-registry: listen on %s: %v\n", *addr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{
		Handler:           registry.New(registry.WithReferrersSupport(true), registry.Logger(logger)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "referrers-registry: %v\n", err)
		os.Exit(1)
	}
}
