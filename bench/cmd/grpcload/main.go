// Command grpcload is the gRPC side of bench/grpc/run.sh: -serve runs a gRPC server (grpc-go's interop
// TestService: UnaryCall echoes its payload), and otherwise it runs a load of unary calls with -c concurrent
// callers for -d against -target and prints the calls per second.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

type server struct {
	testpb.UnimplementedTestServiceServer
}

func (server) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func main() {
	serve := flag.String("serve", "", "serve the TestService on this address")
	target := flag.String("target", "", "address to call (h2c)")
	c := flag.Int("c", 50, "concurrent callers")
	conns := flag.Int("conns", 1, "client connections (callers are spread over them)")
	d := flag.Duration("d", 5*time.Second, "duration")
	size := flag.Int("size", 100, "payload bytes")
	flag.Parse()
	if *serve != "" {
		ln, err := net.Listen("tcp", *serve)
		if err != nil {
			log.Fatal(err)
		}
		s := grpc.NewServer()
		testpb.RegisterTestServiceServer(s, server{})
		log.Fatal(s.Serve(ln))
	}
	clients := make([]testpb.TestServiceClient, *conns)
	for i := range clients {
		cc, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		defer cc.Close()
		clients[i] = testpb.NewTestServiceClient(cc)
	}
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, *size)}}
	// a warm-up call per connection, not counted
	for _, cl := range clients {
		if _, err := cl.UnaryCall(context.Background(), req); err != nil {
			log.Fatal(err)
		}
	}
	var calls, errs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *c {
		wg.Add(1)
		go func(cl testpb.TestServiceClient) {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := cl.UnaryCall(ctx, req); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				calls.Add(1)
			}
		}(clients[i%len(clients)])
	}
	wg.Wait()
	fmt.Printf("%.0f calls/s, %d errors\n", float64(calls.Load())/time.Since(start).Seconds(), errs.Load())
}
