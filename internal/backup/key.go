package backup

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
// like a wrong password does. ChangePassword re-wraps the same master key
// under another password (new salt and nonce), so no data is rewritten;
// losing the password loses the data.

// defaultScryptLogN: N = 2^15, r = 8, p = 1 takes 32 MiB and about 0.1 s.
const (
	maxScryptMemory   = 1 << 30 // bytes scrypt may use (128·r·N) when a repository is opened
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
	case 128*int64(k.R)<<k.LogN > maxScryptMemory:
		// Checked before the key derivation runs: a crafted config.json must
		// not make opening the repository allocate gigabytes.
		return fmt.Errorf("scrypt parameters need %d MiB, more than %d MiB (log_n %d, r %d)",
			128*int64(k.R)<<k.LogN>>20, maxScryptMemory>>20, k.LogN, k.R)
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
	master := make([]byte, masterKeySize)
	if _, err := rand.Read(master); err != nil {
		return nil, nil, err
	}
	c.Key = &keyConfig{KDF: "scrypt", LogN: logN, R: scryptR, P: scryptP}
	if err := wrapKey(c, master, password); err != nil {
		return nil, nil, err
	}
	return c.Key, master, nil
}

// wrapKey sets c.Key's salt and wrapped key: master wrapped under
// password with a fresh random salt and nonce and c.Key's scrypt
// parameters.
func wrapKey(c *repoConfig, master, password []byte) error {
	k := c.Key
	k.Salt = make([]byte, 32)
	nonce := make([]byte, nonceSize)
	for _, b := range [][]byte{k.Salt, nonce} {
		if _, err := rand.Read(b); err != nil {
			return err
		}
	}
	kek, err := deriveKEK(k, password)
	if err != nil {
		return err
	}
	k.Wrapped = kek.Seal(nonce, nonce, master, wrapAAD(c))
	return nil
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
	enc, id := deriveKeys(master)
	aead, err := newGCM(enc)
	if err != nil {
		panic(err)
	}
	r.aead, r.idKey = aead, id
}

// deriveKeys derives the object encryption key and the chunk id key from
// the master key.
func deriveKeys(master []byte) (enc, id []byte) {
	enc, err1 := hkdf.Key(sha256.New, master, nil, "vigil-backup/2 object encryption", 32)
	id, err2 := hkdf.Key(sha256.New, master, nil, "vigil-backup/2 chunk id", 32)
	if err := errors.Join(err1, err2); err != nil {
		panic(err) // only for invalid lengths
	}
	return enc, id
}

// ErrNotEncrypted: a password operation on an unencrypted repository.
var ErrNotEncrypted = errors.New("the repository is not encrypted, so it has no password")

// ChangePassword makes newPassword the repository's password instead of
// current: under the writer lock it reads config.json again, unwraps the
// master key with current, wraps it anew (fresh salt and nonce, the same
// scrypt parameters) under newPassword and replaces config.json
// atomically (a synced temporary file renamed over it, then the directory
// synced). Chunks, manifests and chunk ids depend only on the master key
// and stay as they are. A wrong current password is ErrWrongPassword; any
// failure before the rename leaves the old config.json, and the old
// password, in force. r stays usable.
func (r *Repo) ChangePassword(ctx context.Context, current, newPassword []byte) error {
	fail := func(err error) error { return fmt.Errorf("backup change password %s: %w", r.path, err) }
	if !r.Encrypted() {
		return fail(ErrNotEncrypted)
	}
	if len(newPassword) == 0 {
		return fail(errors.New("the new password is empty"))
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock.Close()
	cfgPath := filepath.Join(r.path, "config.json")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return fail(err)
	}
	var cfg repoConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fail(fmt.Errorf("config.json: %w", err))
	}
	if err := cfg.check(); err != nil {
		return fail(fmt.Errorf("config.json: %w", err))
	}
	if cfg.Encryption == "" {
		return fail(ErrNotEncrypted)
	}
	master, err := unwrapKey(&cfg, current)
	if err != nil {
		return fail(err)
	}
	if _, id := deriveKeys(master); !bytes.Equal(id, r.idKey) {
		return fail(errors.New("config.json holds another key than when the repository was opened (initialised anew?); open it again"))
	}
	key := *cfg.Key
	cfg.Key = &key
	if err := wrapKey(&cfg, master, newPassword); err != nil {
		return fail(err)
	}
	out, _ := json.MarshalIndent(cfg, "", "  ")
	out = append(out, '\n')
	err = writeAtomicDurable(cfgPath, out)
	if err != nil && !errors.Is(err, errDirSync) {
		return fail(fmt.Errorf("config.json not changed, the old password still holds: %w", err))
	}
	// config.json differs from the one r was opened with only in the key's
	// wrapping: r is not stale.
	r.rawMu.Lock()
	r.raw = out
	r.rawMu.Unlock()
	if err != nil {
		return fail(fmt.Errorf("the new password is in effect, but %w: after a power loss the old one may be needed", err))
	}
	return nil
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
