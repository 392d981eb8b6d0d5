package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// TLSConfig is the agent's TLS towards NATS. Setting any key (or a tls://
// URL) turns TLS on; the server's certificate is then verified against CA
// (or the system's roots).
type TLSConfig struct {
	// CA is a PEM file of the certificate authorities that sign the
	// server's certificate. Default: the system's roots.
	CA string `yaml:"ca"`
	// Cert and Key are the PEM client certificate and its key, for servers
	// that verify clients (both or neither).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// InsecureSkipVerify accepts any server certificate. Default false;
	// for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func (t TLSConfig) enabled() bool {
	return t.CA != "" || t.Cert != "" || t.InsecureSkipVerify
}

// authOptions are the nats.go options for n's authentication and TLS: one
// of user/password, token, credentials file or nkey seed file.
func authOptions(n NATSConfig) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case n.User != "":
		opts = append(opts, nats.UserInfo(string(n.User), string(n.Password)))
	case n.Token != "":
		opts = append(opts, nats.Token(string(n.Token)))
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(string(n.Creds)))
	case n.NkeySeed != "":
		o, err := nats.NkeyOptionFromSeed(string(n.NkeySeed))
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_seed: %w", err)
		}
		opts = append(opts, o)
	}
	if n.TLS.enabled() {
		tc, err := n.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// config builds the client's tls.Config.
func (t TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats.tls.ca: %s holds no PEM certificate", t.CA)
		}
		tc.RootCAs = pool
	}
	if t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
