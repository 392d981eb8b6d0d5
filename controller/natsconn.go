package controller

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Connect opens the controller's NATS connection: it reconnects forever,
// and authenticates with whatever cfg provides.
func Connect(cfg NATSConfig, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrl()) }),
	}
	switch {
	case cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(cfg.Creds.String()))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token.String()))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User.String(), cfg.Password.String()))
	}
	nc, err := nats.Connect(cfg.URL.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", cfg.URL, err)
	}
	return nc, nil
}
