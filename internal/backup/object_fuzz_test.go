package backup

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzRepos: an unencrypted zstd repository and an encrypted one with a
// fixed master key, in memory (encode and decode touch no file).
func fuzzRepos() (plain, enc *Repo) {
	plain = &Repo{cfg: repoConfig{Version: formatVersion, Compression: CompressZstd}}
	enc = &Repo{cfg: repoConfig{Version: formatVersion, Compression: CompressZstd, Encryption: encAESGCM}}
	enc.setKeys(bytes.Repeat([]byte{0x5a}, masterKeySize))
	return plain, enc
}

// FuzzOpenObject feeds arbitrary bytes to the object decoder as a stored
// chunk and as a stored manifest: it must never panic, must fail with a
// *CorruptError (never other bytes silently) when it fails, must keep a
// chunk within maxChunk bytes, and whatever the input, encoding it as an
// object and decoding it must give it back.
func FuzzOpenObject(f *testing.F) {
	plain, enc := fuzzRepos()
	id := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	for _, seed := range [][]byte{
		nil, {encRaw}, {encZstd}, {2, 1, 2, 3},
		append([]byte{encRaw}, "raw chunk"...),
		logBytes(1, 2000),
	} {
		f.Add(seed)
	}
	for _, r := range []*Repo{plain, enc} {
		stored, _ := r.encode(r.newChunkIO(), kindChunk, id, logBytes(2, 4000))
		f.Add(bytes.Clone(stored))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range []*Repo{plain, enc} {
			for _, kind := range []string{kindChunk, kindSnapshot} {
				out, err := r.decode(r.newChunkIO(), kind, id, data)
				var ce *CorruptError
				switch {
				case err != nil && !errors.As(err, &ce):
					t.Fatalf("%s: error is not a CorruptError: %v", kind, err)
				case err == nil && kind == kindChunk && len(out) > maxChunk:
					t.Fatalf("chunk decoded to %d bytes", len(out))
				case err == nil && r.aead == nil && len(data) > 0 && data[0] == encRaw && !bytes.Equal(out, data[1:]):
					t.Fatal("raw object decoded to other bytes")
				}
			}
			cio := r.newChunkIO()
			stored, err := r.encode(cio, kindChunk, id, data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.decode(r.newChunkIO(), kindChunk, id, bytes.Clone(stored))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("round trip of %d bytes: %v, %d bytes back", len(data), err, len(got))
			}
		}
	})
}
