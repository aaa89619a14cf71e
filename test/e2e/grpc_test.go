package e2e

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcBackend is a real gRPC server (grpc-go) implementing the interop TestService: UnaryCall answers with the
// backend's name and the metadata it got, or with the status the request asks for; FullDuplexCall echoes each
// message as it comes; StreamingOutputCall sends one message per ResponseParameters entry, after its interval.
type grpcBackend struct {
	testpb.UnimplementedTestServiceServer
	name      string
	cancelled chan struct{} // a streaming call saw its context end
}

func (b *grpcBackend) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	md, _ := metadata.FromIncomingContext(ctx)
	who := b.name + " via=" + strings.Join(md.Get("x-via"), ",") + " user=" + strings.Join(md.Get("x-user"), ",") +
		" authority=" + strings.Join(md.Get(":authority"), ",")
	grpc.SetTrailer(ctx, metadata.Pairs("x-served-by", b.name))
	return &testpb.SimpleResponse{Username: who, Payload: req.GetPayload()}, nil
}

func (b *grpcBackend) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

func (b *grpcBackend) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(req.GetPayload().GetBody())
	}
}

func (b *grpcBackend) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for i, p := range req.GetResponseParameters() {
		select {
		case <-time.After(time.Duration(p.GetIntervalUs()) * time.Microsecond):
		case <-stream.Context().Done():
			if b.cancelled != nil {
				close(b.cancelled)
			}
			return stream.Context().Err()
		}
		body := []byte{byte(i)}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

// startGRPCBackend serves b on a loopback port (TLS when cert is given) and returns its address.
func startGRPCBackend(t *testing.T, b *grpcBackend, cert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
	}
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, b)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func grpcClient(t *testing.T, target string, creds credentials.TransportCredentials) testpb.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// TestGRPC: grpc_pass relays unary calls (metadata, grpc_set_header, trailers and error statuses), streams both
// ways without holding messages back, over TLS (ALPN h2) and cleartext h2c on a `listen … http2` port that still
// serves HTTP/1.1; a client's cancellation reaches the server; a server that is down is 502 (Unavailable).
func TestGRPC(t *testing.T) {
	t.Parallel()
	backend := &grpcBackend{name: "b1", cancelled: make(chan struct{})}
	up := startGRPCBackend(t, backend, nil)
	ca := newCA(t)
	tlsPort, h2cPort := freePort(t), freePort(t)
	conf := `events {}
http {
    access_log logs/access.log;
    server {
        listen {{TLS}} ssl http2;
        listen {{H2C}} http2;
        ssl_certificate site.pem;
        ssl_certificate_key site.key.pem;
        location / {
            grpc_pass grpc://{{UP}};
            grpc_set_header X-Via {{VIA}};
        }
        location /grpc.testing.TestService/EmptyCall {
            grpc_pass 127.0.0.1:1;
        }
        location = /plain {
            return 200 "h1 ok\n";
        }
    }
}
`
	s := start(t, fill(t, conf, "TLS", tlsPort, "H2C", h2cPort, "UP", up, "VIA", "sluice"), ca.certFiles(t, "site", ecdsaP256, "127.0.0.1")...)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	overTLS := grpcClient(t, addr(tlsPort), credentials.NewTLS(ca.clientTLS("127.0.0.1")))
	overH2C := grpcClient(t, addr(h2cPort), insecure.NewCredentials())

	for name, c := range map[string]testpb.TestServiceClient{"tls": overTLS, "h2c": overH2C} {
		var trailer metadata.MD
		mctx := metadata.AppendToOutgoingContext(ctx, "x-user", "alice")
		resp, err := c.UnaryCall(mctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("ping-" + name)}}, grpc.Trailer(&trailer))
		if err != nil {
			t.Fatalf("%s: unary: %v", name, err)
		}
		// :authority is grpc_pass's host and port, as nginx sends it
		if want := "b1 via=sluice user=alice authority=" + up; resp.GetUsername() != want || string(resp.GetPayload().GetBody()) != "ping-"+name {
			t.Errorf("%s: unary = %q %q, want %q", name, resp.GetUsername(), resp.GetPayload().GetBody(), want)
		}
		if got := trailer.Get("x-served-by"); len(got) != 1 || got[0] != "b1" {
			t.Errorf("%s: trailer x-served-by = %v", name, got)
		}
		// an error status travels in the trailers
		_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
		if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing" {
			t.Errorf("%s: error status = %v, want NotFound \"no such thing\"", name, err)
		}
	}

	// bidirectional: each reply comes before the next message is sent
	fd, err := overTLS.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		msg := []byte{'m', byte('0' + i)}
		if err := fd.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: msg}}); err != nil {
			t.Fatal(err)
		}
		got, err := fd.Recv()
		if err != nil || string(got.GetPayload().GetBody()) != string(msg) {
			t.Fatalf("duplex %d: %v %q", i, err, got.GetPayload().GetBody())
		}
	}
	fd.CloseSend()
	if _, err := fd.Recv(); err != io.EOF {
		t.Fatalf("duplex end: %v", err)
	}

	// server streaming: the first message arrives while the server still waits to send the second
	params := []*testpb.ResponseParameters{{IntervalUs: 0}, {IntervalUs: 1_500_000}}
	so, err := overH2C.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := so.Recv(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("first streamed message took %v: held back until the second", d)
	}
	if _, err := so.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := so.Recv(); err != io.EOF {
		t.Fatalf("stream end: %v", err)
	}

	// a reload keeps a running stream, and the calls after it take the new configuration
	so, err = overTLS.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := so.Recv(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(s.Conf, []byte(fill(t, conf, "TLS", tlsPort, "H2C", h2cPort, "UP", up, "VIA", "reloaded")), 0o644)
	s.Signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool {
		resp, err := overTLS.UnaryCall(ctx, &testpb.SimpleRequest{})
		return err == nil && strings.Contains(resp.GetUsername(), "via=reloaded")
	}) {
		t.Fatal("reload did not happen")
	}
	if _, err := so.Recv(); err != nil {
		t.Fatalf("the stream opened before the reload: %v", err)
	}
	if _, err := so.Recv(); err != io.EOF {
		t.Fatalf("stream end after the reload: %v", err)
	}

	// a client's cancellation ends the server's call
	cctx, ccancel := context.WithCancel(ctx)
	so, err = overTLS.StreamingOutputCall(cctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{IntervalUs: 0}, {IntervalUs: 30_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := so.Recv(); err != nil {
		t.Fatal(err)
	}
	ccancel()
	select {
	case <-backend.cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the server's call did not end when the client cancelled")
	}

	// a server that is down: 502, which gRPC clients read as Unavailable
	_, err = overTLS.EmptyCall(ctx, &testpb.Empty{})
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "502") {
		t.Errorf("down server: %v, want Unavailable with HTTP status 502", err)
	}
	if !eventually(3*time.Second, func() bool { return strings.Contains(s.Log(), "connect() failed") }) {
		t.Errorf("no connect() failed line in the error log:\n%s", s.Log())
	}

	// the h2c port still serves HTTP/1.1
	r := get(t, &http.Client{}, "http://"+addr(h2cPort)+"/plain", nil)
	if r.StatusCode != 200 || r.Body != "h1 ok\n" {
		t.Errorf("HTTP/1.1 on the h2c port: %d %q", r.StatusCode, r.Body)
	}
	logged, _ := os.ReadFile(filepath.Join(s.Prefix, "logs/access.log"))
	if !strings.Contains(string(logged), `"POST /grpc.testing.TestService/UnaryCall HTTP/2.0" 200`) {
		t.Errorf("access log has no gRPC call:\n%s", logged)
	}
}

// TestGRPCUpstream: grpc_pass to an upstream group balances calls over its peers and passes a call on when a
// peer cannot be connected to; grpcs:// verifies the server's certificate (grpc_ssl_verify) and sends SNI.
func TestGRPCUpstream(t *testing.T) {
	t.Parallel()
	a := startGRPCBackend(t, &grpcBackend{name: "a"}, nil)
	b := startGRPCBackend(t, &grpcBackend{name: "b"}, nil)
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, ecdsaP256, "grpc.test")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	secure := startGRPCBackend(t, &grpcBackend{name: "secure"}, &cert)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    upstream pool {
        server 127.0.0.1:1;
        server {{A}};
        server {{B}};
    }
    server {
        listen {{PORT}} http2;
        location /grpc.testing.TestService/ {
            grpc_pass grpc://pool;
        }
        location /secure/ {
            rewrite ^/secure(/.*)$ $1 break;
            grpc_pass grpcs://{{S}};
            grpc_ssl_verify on;
            grpc_ssl_trusted_certificate ca.pem;
            grpc_ssl_name grpc.test;
            grpc_ssl_server_name on;
        }
        location /insecure/ {
            rewrite ^/insecure(/.*)$ $1 break;
            grpc_pass grpcs://{{S}};
            grpc_ssl_verify on;
            grpc_ssl_trusted_certificate ca.pem;
            grpc_ssl_name other.test;
        }
    }
}
`, "PORT", port, "A", a, "B", b, "S", secure), withFile("conf/ca.pem", caPEM))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := grpcClient(t, addr(port), insecure.NewCredentials())
	seen := map[string]int{}
	for range 6 {
		resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
		if err != nil {
			t.Fatalf("call through the pool failed (a dead peer must be passed over): %v", err)
		}
		seen[strings.Fields(resp.GetUsername())[0]]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["a"]+seen["b"] != 6 {
		t.Errorf("calls per peer = %v, want both live peers used", seen)
	}

	// grpcs://: the same service under a prefix the location rewrites away
	cc, err := grpc.NewClient(addr(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var out testpb.SimpleResponse
	if err := cc.Invoke(ctx, "/secure/grpc.testing.TestService/UnaryCall", &testpb.SimpleRequest{}, &out); err != nil {
		t.Fatalf("grpcs: %v", err)
	}
	if !strings.HasPrefix(out.GetUsername(), "secure ") {
		t.Errorf("grpcs answer %q", out.GetUsername())
	}
	err = cc.Invoke(ctx, "/insecure/grpc.testing.TestService/UnaryCall", &testpb.SimpleRequest{}, &out)
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "502") {
		t.Errorf("grpcs with a name the certificate lacks: %v, want 502", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("timed out")
	}
}

// TestGRPCReadTimeout: grpc_read_timeout runs once the request has been sent, as nginx's read timer: a client
// stream longer than it whose server answers at its end succeeds, and a server silent longer than it after the
// request ends the call.
func TestGRPCReadTimeout(t *testing.T) {
	t.Parallel()
	up := startGRPCBackend(t, &grpcBackend{name: "b"}, nil)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}} http2;
        location / { grpc_pass grpc://{{UP}}; grpc_read_timeout 1s; }
    }
}
`, "PORT", port, "UP", up))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := grpcClient(t, addr(port), insecure.NewCredentials())
	in, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := in.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, 100)}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond)
	}
	resp, err := in.CloseAndRecv()
	if err != nil || resp.GetAggregatedPayloadSize() != 400 {
		t.Fatalf("a 2.4 s client stream with grpc_read_timeout 1s: %v, %d bytes", err, resp.GetAggregatedPayloadSize())
	}
	so, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{IntervalUs: 0}, {IntervalUs: 3_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := so.Recv(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := so.Recv(); err == nil || time.Since(began) > 2500*time.Millisecond {
		t.Errorf("a server silent 3 s with grpc_read_timeout 1s: %v after %v, want the call ended after about 1 s", err, time.Since(began))
	}
}

// TestH2CBehindProxyProtocol: on a `listen … proxy_protocol http2` port (a cleartext port behind a load
// balancer), the bytes after the PROXY header tell h2c from HTTP/1.1 too, and $remote_addr is the header's.
func TestH2CBehindProxyProtocol(t *testing.T) {
	t.Parallel()
	up := startGRPCBackend(t, &grpcBackend{name: "pp"}, nil)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}} proxy_protocol http2;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / { grpc_pass grpc://{{UP}}; grpc_set_header X-User $remote_addr; }
        location = /plain { return 200 "h1 $remote_addr\n"; }
    }
}
`, "PORT", port, "UP", up))
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr(port))
		if err == nil {
			_, err = io.WriteString(c, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n")
		}
		return c, err
	}
	cc, err := grpc.NewClient("passthrough:///pp", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dialer))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := testpb.NewTestServiceClient(cc).UnaryCall(ctx, &testpb.SimpleRequest{})
	if err != nil || !strings.Contains(resp.GetUsername(), "user=203.0.113.7") {
		t.Fatalf("h2c after a PROXY header: %v %q", err, resp.GetUsername())
	}
	c, err := dialer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "h1 203.0.113.7\n") {
		t.Errorf("HTTP/1.1 after a PROXY header: %q", b)
	}
}
