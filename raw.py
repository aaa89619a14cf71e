import socket,sys
def req(port, data, n=600):
    s=socket.create_connection(("127.0.0.1",port)); s.settimeout(3)
    s.sendall(data); out=b""
    try:
        while len(out)<n:
            x=s.recv(4096)
            if not x: break
            out+=x
    except Exception as e: out+=b"<"+str(e).encode()+b">"
    return out
tests=[
 b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
 b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
 b"GET http://evil.com/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
 b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
 b"GET /a HTTP/1.1\r\nHost: [::1\r\n\r\n",
 b"GET /a HTTP/1.1\r\nHost: a..b\r\n\r\n",
 b"GET /a HTTP/1.1\r\nHost: :80\r\n\r\n",
 b"GET /a HTTP/1.1\r\nHost: \r\n\r\n",
 b"GET /a HTTP/1.0\r\n\r\n",
 b"GET /a%0d%0aX-Inj:%201 HTTP/1.1\r\nHost: x\r\n\r\n",
 b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smug HTTP/1.1\r\nHost: x\r\n\r\n",
 b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
]
port=int(sys.argv[1])
for t in tests:
    print("==>", t.split(b"\r\n")[0]); print(req(port,t)[:400].decode('latin1')); print()
