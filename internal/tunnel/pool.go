package tunnel

import "sync"

// DefaultBufferSize is the per-direction copy buffer used when Options does not
// name one.
const DefaultBufferSize = 16 << 10

// BufferPool is a pool of equally sized copy buffers shared by tunnels. With a
// pool, a tunnel direction holds a buffer only while bytes are in flight, so an
// idle tunnel holds none. Safe for concurrent use.
type BufferPool struct {
	size  int
	p     sync.Pool // of *[]byte, len == size
	small sync.Pool // of *[]byte, len == smallBufSize: first reads of non-socket sources
}

// NewBufferPool returns a pool of size-byte buffers; size <= 0 means
// DefaultBufferSize.
func NewBufferPool(size int) *BufferPool {
	if size <= 0 {
		size = DefaultBufferSize
	}
	return &BufferPool{size: size}
}

// Size reports the length of the pool's buffers.
func (b *BufferPool) Size() int { return b.size }

func (b *BufferPool) get() *[]byte {
	if p, _ := b.p.Get().(*[]byte); p != nil {
		return p
	}
	s := make([]byte, b.size)
	return &s
}

func (b *BufferPool) put(p *[]byte) { b.p.Put(p) }

func (b *BufferPool) getSmall() []byte {
	if p, _ := b.small.Get().(*[]byte); p != nil {
		return *p
	}
	return make([]byte, smallBufSize)
}

func (b *BufferPool) putSmall(s []byte) { b.small.Put(&s) }
