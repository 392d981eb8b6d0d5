package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// A spool record is one telemetry batch on disk, framed so that a record
// cut short by a crash, or damaged later, is detected and skipped:
//
//	offset  size  field
//	0       4     magic "VSR1"
//	4       4     body length n (little endian)
//	8       4     CRC-32C (Castagnoli) of bytes 4..8 and of the body
//	12      n     body:
//	              seq (8, LE) · created, Unix ns (8, LE) ·
//	              run length (1) · run · host length (2, LE) · host ·
//	              data (the batch's line protocol, to the end)
//
// The body keeps what the publisher needs to re-send the batch exactly as
// it would have been sent: run, seq (hence Nats-Msg-Id) and host.
const (
	recMagic  = "VSR1"
	recHeader = 12
	// recMaxBody bounds a body: the largest batch plus its metadata. A
	// length above it is damage, not a record.
	recMaxBody = wire.MaxBatchBytes + 16 + 1 + 255 + 2 + 65535
)

var (
	crcTable = crc32.MakeTable(crc32.Castagnoli)

	errRecShort   = errors.New("spool record cut short")
	errRecCorrupt = errors.New("spool record corrupt")
)

// recordSize is the framed size of b.
func recordSize(b *batch, run, host string) int {
	return recHeader + 16 + 1 + len(run) + 2 + len(host) + len(b.data)
}

// appendRecord frames b (of run and host) onto dst. run is at most 255 and
// host at most 65535 bytes (callers check).
func appendRecord(dst []byte, b *batch, run, host string) []byte {
	start := len(dst)
	dst = append(dst, recMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // length, below
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, below
	body := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, b.seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.created.UnixNano()))
	dst = append(dst, byte(len(run)))
	dst = append(dst, run...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(host)))
	dst = append(dst, host...)
	dst = append(dst, b.data...)
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(len(dst)-body))
	crc := crc32.Update(0, crcTable, dst[start+4:start+8])
	crc = crc32.Update(crc, crcTable, dst[body:])
	binary.LittleEndian.PutUint32(dst[start+8:], crc)
	return dst
}

// decodeRecord reads the record at the start of buf and returns it with
// its framed size. The batch's data aliases buf. errRecShort: buf ends
// inside the record (a write cut short, if at the end of a file);
// errRecCorrupt: not a valid record.
func decodeRecord(buf []byte) (b batch, size int, err error) {
	if len(buf) < recHeader {
		if len(buf) > 0 && !hasMagicPrefix(buf) {
			return batch{}, 0, errRecCorrupt
		}
		return batch{}, 0, errRecShort
	}
	if string(buf[:4]) != recMagic {
		return batch{}, 0, errRecCorrupt
	}
	n := binary.LittleEndian.Uint32(buf[4:8])
	if n < 16+1+2 || n > recMaxBody {
		return batch{}, 0, errRecCorrupt
	}
	if uint64(len(buf)) < uint64(recHeader)+uint64(n) {
		return batch{}, 0, errRecShort
	}
	body := buf[recHeader : recHeader+int(n)]
	crc := crc32.Update(0, crcTable, buf[4:8])
	if crc32.Update(crc, crcTable, body) != binary.LittleEndian.Uint32(buf[8:12]) {
		return batch{}, 0, errRecCorrupt
	}
	b.seq = binary.LittleEndian.Uint64(body)
	b.created = time.Unix(0, int64(binary.LittleEndian.Uint64(body[8:])))
	rest := body[16:]
	rl := int(rest[0])
	if len(rest) < 1+rl+2 {
		return batch{}, 0, errRecCorrupt
	}
	b.run = string(rest[1 : 1+rl])
	rest = rest[1+rl:]
	hl := int(binary.LittleEndian.Uint16(rest))
	if len(rest) < 2+hl {
		return batch{}, 0, errRecCorrupt
	}
	b.host = string(rest[2 : 2+hl])
	b.data = rest[2+hl:]
	return b, recHeader + int(n), nil
}

func hasMagicPrefix(buf []byte) bool {
	n := min(len(buf), len(recMagic))
	return string(buf[:n]) == recMagic[:n]
}

// recSpan locates one valid record in a segment file.
type recSpan struct {
	off  int64
	size int32
}

// scanRecords finds the valid records of a segment's contents, in order.
// Damaged bytes are skipped up to the next record that decodes: each such
// stretch counts once in corrupt. A record cut short at the end (a crash
// while writing) counts in corrupt too.
func scanRecords(data []byte) (spans []recSpan, corrupt int) {
	off := 0
	bad := false // inside a damaged stretch
	for off < len(data) {
		_, size, err := decodeRecord(data[off:])
		if err == nil {
			spans = append(spans, recSpan{off: int64(off), size: int32(size)})
			off += size
			bad = false
			continue
		}
		if !bad {
			corrupt++
			bad = true
		}
		next := indexMagic(data[off+1:])
		if next < 0 {
			break
		}
		off += 1 + next
	}
	return spans, corrupt
}

var magicBytes = []byte(recMagic)

// indexMagic returns the offset of the next record magic in b, or -1.
func indexMagic(b []byte) int { return bytes.Index(b, magicBytes) }
