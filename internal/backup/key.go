package backup

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/scrypt"
)

// Key handling of an encrypted repository.
//
//	master  = 32 random bytes, made once by Init
//	kek     = scrypt(password, salt, N=2^logN, r, p, 32)        (salt: 32 random bytes)
//	wrapped = nonce(12) || AES-256-GCM(kek, nonce, master, wrapAAD) || tag(16)
//	encKey  = HKDF-SHA256(master, info "vigil-backup/2 object encryption")
//	idKey   = HKDF-SHA256(master, info "vigil-backup/2 chunk id")
//
// config.json stores kdf, logN, r, p, salt and wrapped. wrapAAD lists
// every other setting of config.json, so altering one (e.g. lowering the
// scrypt cost, switching compression) makes the key fail to unwrap just
// like a wrong password does. The password can be changed by re-wrapping
// the same master key (not implemented yet); losing it loses the data.

// defaultScryptLogN: N = 2^15, r = 8, p = 1 takes 32 MiB and about 0.1 s.
const (
	defaultScryptLogN = 15
	scryptR           = 8
	scryptP           = 1
	masterKeySize     = 32
)

// keyConfig is config.json's "key".
type keyConfig struct {
	KDF     string `json:"kdf"` // "scrypt"
	LogN    int    `json:"log_n"`
	R       int    `json:"r"`
	P       int    `json:"p"`
	Salt    []byte `json:"salt"`        // base64 in JSON
	Wrapped []byte `json:"wrapped_key"` // base64 in JSON
}

func (k *keyConfig) check() error {
	switch {
	case k.KDF != "scrypt":
		return fmt.Errorf("unknown key derivation %q", k.KDF)
	case k.LogN < 10 || k.LogN > 22 || k.R < 1 || k.R > 32 || k.P < 1 || k.P > 16:
		return fmt.Errorf("scrypt parameters out of range (log_n %d, r %d, p %d)", k.LogN, k.R, k.P)
	case len(k.Salt) < 16:
		return errors.New("key salt too short")
	case len(k.Wrapped) != nonceSize+masterKeySize+tagSize:
		return errors.New("wrapped key has the wrong length")
	}
	return nil
}

// wrapAAD is the configuration the wrapped key is bound to.
func wrapAAD(c *repoConfig) []byte {
	k := c.Key
	return fmt.Appendf(nil, "vigil-backup key v%d chunker=%s min=%d avg=%d max=%d compression=%s encryption=%s kdf=%s log_n=%d r=%d p=%d",
		c.Version, c.Chunker, c.MinChunk, c.AvgChunk, c.MaxChunk, c.Compression, c.Encryption, k.KDF, k.LogN, k.R, k.P)
}

func deriveKEK(k *keyConfig, password []byte) (cipher.AEAD, error) {
	kek, err := scrypt.Key(password, k.Salt, 1<<k.LogN, k.R, k.P, 32)
	if err != nil {
		return nil, err
	}
	return newGCM(kek)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// newKey makes a master key and its wrapping for c (whose other fields are
// set) under password.
func newKey(c *repoConfig, password []byte, logN int) (*keyConfig, []byte, error) {
	if logN == 0 {
		logN = defaultScryptLogN
	}
	k := &keyConfig{KDF: "scrypt", LogN: logN, R: scryptR, P: scryptP, Salt: make([]byte, 32)}
	master := make([]byte, masterKeySize)
	nonce := make([]byte, nonceSize)
	for _, b := range [][]byte{k.Salt, master, nonce} {
		if _, err := rand.Read(b); err != nil {
			return nil, nil, err
		}
	}
	kek, err := deriveKEK(k, password)
	if err != nil {
		return nil, nil, err
	}
	c.Key = k
	k.Wrapped = kek.Seal(nonce, nonce, master, wrapAAD(c))
	return k, master, nil
}

// unwrapKey recovers the master key of c with password.
func unwrapKey(c *repoConfig, password []byte) ([]byte, error) {
	k := c.Key
	kek, err := deriveKEK(k, password)
	if err != nil {
		return nil, err
	}
	master, err := kek.Open(nil, k.Wrapped[:nonceSize], k.Wrapped[nonceSize:], wrapAAD(c))
	if err != nil {
		return nil, ErrWrongPassword
	}
	return master, nil
}

// setKeys derives the object and id keys from the master key.
func (r *Repo) setKeys(master []byte) {
	enc, err1 := hkdf.Key(sha256.New, master, nil, "vigil-backup/2 object encryption", 32)
	id, err2 := hkdf.Key(sha256.New, master, nil, "vigil-backup/2 chunk id", 32)
	if err := errors.Join(err1, err2); err != nil {
		panic(err) // only for invalid lengths
	}
	aead, err := newGCM(enc)
	if err != nil {
		panic(err)
	}
	r.aead, r.idKey = aead, id
}

// ReadPasswordFile reads a repository password from a file: its content
// without one trailing newline ("\n" or "\r\n"), which must not be empty.
func ReadPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("password file %s is empty", path)
	}
	return b, nil
}
