package backup

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Object kinds, part of each object's authenticated data.
const (
	kindChunk    = "chunk"
	kindSnapshot = "snapshot"
	kindVerified = "verified"
)

// Encoding byte in front of a version-2 object's payload.
const (
	encRaw  byte = 0
	encZstd byte = 1
)

const (
	nonceSize = 12
	tagSize   = 16
	// maxManifest bounds a decompressed manifest or record (a zstd frame
	// claiming more is rejected before allocating).
	maxManifest = 1 << 30
)

// zstd coders shared by every repository: EncodeAll and DecodeAll may be
// called concurrently and each keeps one state per GOMAXPROCS, so no
// chunk allocates a coder. Chunks decode into a buffer of maxChunk bytes
// and never beyond it (whatever size a frame claims). Manifests and
// records, rare and of no fixed bound, decode as a stream that grows with
// the output actually produced, up to maxManifest.
var (
	zstdOnce     sync.Once
	zstdEnc      *zstd.Encoder
	zstdChunkDec *zstd.Decoder
)

func zstdInit() {
	n := runtime.GOMAXPROCS(0)
	var err error
	zstdEnc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(n))
	if err != nil {
		panic(err)
	}
	zstdChunkDec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(n), zstd.WithDecoderMaxMemory(maxChunk),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic(err)
	}
}

// unzstdStream decodes a manifest or record.
func unzstdStream(body []byte) ([]byte, error) {
	d, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxManifest))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	out, err := io.ReadAll(io.LimitReader(d, maxManifest+1))
	if err == nil && len(out) > maxManifest {
		err = errors.New("more than 1 GiB")
	}
	return out, err
}

// chunkIO holds the buffers and the id hash one goroutine uses to encode
// and decode objects of one repository, so a chunk costs no allocation
// beyond its id string.
type chunkIO struct {
	r     *Repo
	idh   hash.Hash // SHA-256, or HMAC-SHA256 with the id key
	sum   [sha256.Size]byte
	want  [sha256.Size]byte
	file  []byte // an object as stored
	plain []byte // a decompressed object
	enc   []byte // an object being encoded
	aad   []byte
}

func (r *Repo) newChunkIO() *chunkIO {
	c := &chunkIO{r: r}
	if r.idKey != nil {
		c.idh = hmac.New(sha256.New, r.idKey)
	} else {
		c.idh = sha256.New()
	}
	return c
}

// idSum hashes data into c.sum.
func (c *chunkIO) idSum(data []byte) []byte {
	c.idh.Reset()
	c.idh.Write(data)
	return c.idh.Sum(c.sum[:0])
}

// id is the chunk id of data: hex SHA-256, or hex HMAC-SHA256(idKey) in
// an encrypted repository.
func (c *chunkIO) id(data []byte) string { return hex.EncodeToString(c.idSum(data)) }

// matches reports whether data's chunk id is id.
func (c *chunkIO) matches(id string, data []byte) bool {
	if n, err := hex.Decode(c.want[:], []byte(id)); err != nil || n != len(c.want) {
		return false
	}
	return hmac.Equal(c.idSum(data), c.want[:])
}

// sameIDs reports whether r and o name equal content with equal chunk ids.
func (r *Repo) sameIDs(o *Repo) bool { return bytes.Equal(r.idKey, o.idKey) }

func (c *chunkIO) setAAD(kind, id string) []byte {
	c.aad = append(append(append(append(c.aad[:0], "vigil-backup/2 "...), kind...), ' '), id...)
	return c.aad
}

// worthIt reports whether a compressed size is small enough to keep: it
// must save at least 1/64 of the plaintext.
func worthIt(compressed, plain int) bool { return compressed < plain-plain/64 }

// encode returns the stored form of plain, object kind with name id (see
// the package comment). It is valid until c's next use.
func (r *Repo) encode(c *chunkIO, kind, id string, plain []byte) ([]byte, error) {
	if r.cfg.Version == formatV1 {
		return plain, nil
	}
	enc := r.aead != nil
	b := c.enc[:0]
	if enc {
		b = append(b, make([]byte, nonceSize)...)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	start := len(b)
	b = append(b, encRaw)
	if r.cfg.Compression == CompressZstd && len(plain) > 0 {
		zstdOnce.Do(zstdInit)
		b[start] = encZstd
		b = zstdEnc.EncodeAll(plain, b)
		if !worthIt(len(b)-start-1, len(plain)) {
			b = b[:start+1]
			b[start] = encRaw
		}
	}
	if b[start] == encRaw {
		b = append(b, plain...)
	}
	if enc {
		if cap(b) < len(b)+tagSize {
			b = append(b, make([]byte, tagSize)...)[:len(b)]
		}
		b = r.aead.Seal(b[:nonceSize], b[:nonceSize], b[nonceSize:], c.setAAD(kind, id))
	}
	c.enc = b
	return b, nil
}

// decode returns the plaintext of stored, object kind with name id; it
// may alias stored or c's buffers. An object that fails authentication
// or cannot be decoded is a *CorruptError.
func (r *Repo) decode(c *chunkIO, kind, id string, stored []byte) ([]byte, error) {
	if r.cfg.Version == formatV1 {
		return stored, nil
	}
	body := stored
	if r.aead != nil {
		if len(stored) < nonceSize+tagSize+1 {
			return nil, &CorruptError{Object: kind, ID: id, Reason: "failed authentication (too short)"}
		}
		var err error
		body, err = r.aead.Open(stored[nonceSize:nonceSize], stored[:nonceSize], stored[nonceSize:], c.setAAD(kind, id))
		if err != nil {
			return nil, &CorruptError{Object: kind, ID: id, Reason: "failed authentication (altered, or not written with this repository's key)"}
		}
	}
	if len(body) == 0 {
		return nil, &CorruptError{Object: kind, ID: id, Reason: "empty object"}
	}
	switch body[0] {
	case encRaw:
		return body[1:], nil
	case encZstd:
		var out []byte
		var err error
		if kind == kindChunk {
			zstdOnce.Do(zstdInit)
			if cap(c.plain) < maxChunk {
				c.plain = make([]byte, 0, maxChunk)
			}
			out, err = zstdChunkDec.DecodeAll(body[1:], c.plain[:0])
		} else {
			out, err = unzstdStream(body[1:])
		}
		if err != nil {
			return nil, &CorruptError{Object: kind, ID: id, Reason: "zstd: " + err.Error()}
		}
		return out, nil
	}
	return nil, &CorruptError{Object: kind, ID: id, Reason: "unknown encoding byte " + hex.EncodeToString(body[:1])}
}
