package backup

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func chunksOf(t testing.TB, r io.Reader) [][]byte {
	c := newChunker(r)
	var out [][]byte
	for {
		b, err := c.next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), b...))
	}
}

// checkChunks: the chunks rebuild data and respect the size bounds.
func checkChunks(t testing.TB, data []byte, chunks [][]byte) {
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatalf("chunks rebuild %d bytes, want %d", len(got), len(data))
	}
	for i, c := range chunks {
		if len(c) > maxChunk || len(c) == 0 || (len(c) < minChunk && i != len(chunks)-1) {
			t.Fatalf("chunk %d of %d has %d bytes", i, len(chunks), len(c))
		}
	}
}

func TestChunkerBoundsAndResync(t *testing.T) {
	data := randBytes(5, 20<<20)
	a := chunksOf(t, bytes.NewReader(data))
	checkChunks(t, data, a)
	// A reader returning one byte at a time cuts in the same places.
	small := data[:3<<20]
	checkChunks(t, small, chunksOf(t, iotest.OneByteReader(bytes.NewReader(small))))
	if n := len(a); n < 8 || n > 40 {
		t.Errorf("20 MiB in %d chunks; want about 16 (average about 1.25 MiB)", n)
	}
	// Zeros never match the cut condition: cut at maxChunk.
	zeros := make([]byte, 9<<20)
	z := chunksOf(t, bytes.NewReader(zeros))
	checkChunks(t, zeros, z)
	if len(z) != 3 || len(z[0]) != maxChunk {
		t.Errorf("zeros: %d chunks, first %d bytes", len(z), len(z[0]))
	}
	// Deleting 1000 bytes in the middle leaves all chunks but one or two.
	edited := append(append([]byte(nil), data[:10<<20]...), data[10<<20+1000:]...)
	b := chunksOf(t, bytes.NewReader(edited))
	have := map[string]bool{}
	for _, c := range a {
		have[hashHex(c)] = true
	}
	changed := 0
	for _, c := range b {
		if !have[hashHex(c)] {
			changed++
		}
	}
	if changed > 2 {
		t.Errorf("a 1000-byte deletion changed %d of %d chunks", changed, len(b))
	}
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte("hello"), uint32(0))
	f.Add([]byte{0, 1, 2, 3}, uint32(minChunk+1))
	f.Fuzz(func(t *testing.T, seed []byte, size uint32) {
		n := int(size % (6 << 20))
		data := make([]byte, n)
		for i := range data {
			if len(seed) > 0 {
				data[i] = seed[i%len(seed)] ^ byte(i>>11)
			}
		}
		checkChunks(t, data, chunksOf(t, bytes.NewReader(data)))
	})
}
