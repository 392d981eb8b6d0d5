package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/vigil-sre/vigil/internal/config"
)

// authServer starts a nats-server (no JetStream) with the given
// authentication or TLS settings on a random loopback port.
func authServer(t *testing.T, o server.Options) string {
	t.Helper()
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	srv, err := server.NewServer(&o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// tryConnect connects a publisher with n and reports whether it got
// connected, or was refused (the refusal logged), within 5 s.
func tryConnect(t *testing.T, n NATSConfig) (bool, string) {
	t.Helper()
	n.ReconnectWait = 50 * time.Millisecond
	n.ReconnectBuffer = 1 << 20
	logs := &syncBuffer{}
	p := newPublisher("h", "run", Config{Publish: PublishConfig{MaxPendingBatches: 1}}, slog.New(slog.NewTextHandler(logs, nil)))
	if err := p.connect(n); err != nil {
		return false, err.Error()
	}
	defer p.close()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if p.nc.IsConnected() {
			return true, logs.String()
		}
		if strings.Contains(logs.String(), "nats connection attempt failed") {
			return false, logs.String()
		}
	}
	return false, logs.String()
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNATSUserPasswordAndToken(t *testing.T) {
	url := authServer(t, server.Options{Users: []*server.User{{Username: "vigil", Password: "s3cret"}}})
	if ok, logs := tryConnect(t, NATSConfig{URL: config.Expand(url), User: "vigil", Password: "s3cret"}); !ok {
		t.Fatalf("right password refused:\n%s", logs)
	}
	if ok, logs := tryConnect(t, NATSConfig{URL: config.Expand(url), User: "vigil", Password: "wrong"}); ok {
		t.Fatal("wrong password accepted")
	} else if !strings.Contains(strings.ToLower(logs), "authorization") {
		t.Errorf("refusal not logged:\n%s", logs)
	}

	url = authServer(t, server.Options{Authorization: "tok-123"})
	if ok, logs := tryConnect(t, NATSConfig{URL: config.Expand(url), Token: "tok-123"}); !ok {
		t.Fatalf("right token refused:\n%s", logs)
	}
	if ok, _ := tryConnect(t, NATSConfig{URL: config.Expand(url), Token: "nope"}); ok {
		t.Fatal("wrong token accepted")
	}
}

func TestNATSNkeySeed(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	url := authServer(t, server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	if ok, logs := tryConnect(t, NATSConfig{URL: config.Expand(url), NkeySeed: config.Expand(writeFile(t, "agent.nk", seed))}); !ok {
		t.Fatalf("registered nkey refused:\n%s", logs)
	}
	if ok, _ := tryConnect(t, NATSConfig{URL: config.Expand(url), NkeySeed: config.Expand(writeFile(t, "other.nk", otherSeed))}); ok {
		t.Fatal("unknown nkey accepted")
	}
	if ok, msg := tryConnect(t, NATSConfig{URL: config.Expand(url), NkeySeed: config.Expand(writeFile(t, "bad.nk", []byte("not a seed")))}); ok || !strings.Contains(msg, "nkey_seed") {
		t.Fatalf("bad seed file: ok %v, %s", ok, msg)
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	caPool                                           *x509.CertPool
}

func newTestPKI(t *testing.T, name string) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, file string) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: file},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return writeFile(t, file+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			writeFile(t, file+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	}
	p := testPKI{ca: writeFile(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)
	p.serverCert, p.serverKey = leaf(2, x509.ExtKeyUsageServerAuth, "server")
	p.clientCert, p.clientKey = leaf(3, x509.ExtKeyUsageClientAuth, "client")
	return p
}

func TestNATSTLS(t *testing.T) {
	pki := newTestPKI(t, "vigil")
	cert, err := tls.LoadX509KeyPair(pki.serverCert, pki.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	url := authServer(t, server.Options{
		TLS: true, TLSVerify: true, TLSTimeout: 2,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert}, ClientCAs: pki.caPool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
	})
	url = strings.Replace(url, "nats://", "tls://", 1)
	good := TLSConfig{CA: pki.ca, Cert: pki.clientCert, Key: pki.clientKey}
	if ok, logs := tryConnect(t, NATSConfig{URL: config.Expand(url), TLS: good}); !ok {
		t.Fatalf("TLS with CA and client certificate refused:\n%s", logs)
	}
	other := newTestPKI(t, "other")
	for name, tc := range map[string]TLSConfig{
		"no client certificate":  {CA: pki.ca},
		"server from another CA": {CA: other.ca, Cert: pki.clientCert, Key: pki.clientKey},
		"client from another CA": {CA: pki.ca, Cert: other.clientCert, Key: other.clientKey},
	} {
		if ok, _ := tryConnect(t, NATSConfig{URL: config.Expand(url), TLS: tc}); ok {
			t.Errorf("%s: connected", name)
		}
	}
}

func TestNATSAuthConfigErrors(t *testing.T) {
	seed := writeFile(t, "x.nk", []byte("SU..."))
	for _, tc := range []struct{ yaml, want string }{
		{"nats: {user: a, password: b, nkey_seed: " + seed + "}\n", "use one of"},
		{"nats: {nkey_seed: /nonexistent/seed}\n", "nats.nkey_seed"},
		{"nats: {tls: {cert: " + seed + "}}\n", "nats.tls.cert and nats.tls.key go together"},
		{"nats: {tls: {ca: /nonexistent/ca.pem}}\n", "nats.tls.ca"},
		{"nats: {tls: {insecure: true}}\n", `unknown key "insecure"`},
		{"spool: {max_bytes: 12XB}\n", "invalid size"},
		{"spool: {max_bytes: 1000}\n", "too small"},
		{"spool: {dir: relative/dir}\n", "absolute"},
		{"metrics: {listen: localhost}\n", "metrics.listen"},
	} {
		_, err := ParseConfig("a.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "a.yaml:") {
			t.Errorf("%q: %v, want an error with a.yaml:line:col and %q", tc.yaml, err, tc.want)
		}
	}
	c, err := ParseConfig("ok.yaml", []byte("state_dir: /var/lib/x\nspool: {max_bytes: 64MiB}\nmetrics: {listen: \"127.0.0.1:0\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SpoolDir() != "/var/lib/x/spool" || c.Spool.MaxBytes != 64<<20 || c.MetricsAddr() != "127.0.0.1:0" {
		t.Errorf("spool dir %q max %d metrics %q", c.SpoolDir(), c.Spool.MaxBytes, c.MetricsAddr())
	}
	c, _ = ParseConfig("off.yaml", []byte("state_dir: /var/lib/x\nspool: {dir: \"off\"}\nmetrics: {listen: \"off\"}\n"))
	if c.SpoolDir() != "" || c.MetricsAddr() != "" {
		t.Errorf("off: spool %q metrics %q", c.SpoolDir(), c.MetricsAddr())
	}
}
