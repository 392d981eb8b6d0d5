// Package wire holds Vigil's wire contract: NATS subjects, stream names,
// message headers, the telemetry encoding (InfluxDB line protocol) and the
// event schema shared by the agent, the controller and the CLI.
//
// It must stay free of heavy dependencies: the agent links it.
package wire

import (
	"strconv"
	"strings"
)

// Subjects, streams and headers of the wire contract (see DESIGN.md).
const (
	// TelemetryPrefix is followed by the host token: vigil.telemetry.<host>.
	TelemetryPrefix = "vigil.telemetry."
	// TelemetryWildcard matches every host's telemetry.
	TelemetryWildcard = "vigil.telemetry.>"
	// TelemetryStream captures TelemetryWildcard (file storage, bounded).
	TelemetryStream = "VIGIL_TELEMETRY"

	// EventsPrefix is followed by <kind>.<host>: vigil.events.action.web-1.
	EventsPrefix = "vigil.events."
	// EventsWildcard matches every event.
	EventsWildcard = "vigil.events.>"
	// EventsStream captures EventsWildcard; history is written from it.
	EventsStream = "VIGIL_EVENTS"

	// CommandPrefix is followed by the host token: vigil.cmd.<host>.
	CommandPrefix = "vigil.cmd."

	// HeaderRun carries a random id chosen at every agent start.
	HeaderRun = "Vigil-Run"
	// HeaderSeq carries a sequence number, monotonic within a run.
	HeaderSeq = "Vigil-Seq"
	// HeaderMsgID is JetStream's de-duplication header: <host>-<run>-<seq>.
	HeaderMsgID = "Nats-Msg-Id"

	// MaxBatchBytes bounds one telemetry message; larger ones are refused
	// by the controller and counted.
	MaxBatchBytes = 4 << 20
)

// Token turns a host name into one NATS subject token: characters other
// than letters, digits, '-' and '_' become '_'. "web-1.eu" -> "web-1_eu".
func Token(host string) string {
	ok := host != ""
	for i := 0; i < len(host) && ok; i++ {
		ok = tokenByte(host[i])
	}
	if ok {
		return host
	}
	if host == "" {
		return "_"
	}
	b := []byte(host)
	for i, c := range b {
		if !tokenByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// TelemetrySubject is the subject an agent on host publishes to.
func TelemetrySubject(host string) string { return TelemetryPrefix + Token(host) }

// CommandSubject is the subject the agent on host answers host actions on.
func CommandSubject(host string) string { return CommandPrefix + Token(host) }

// MsgID is the JetStream de-duplication id of one telemetry batch.
func MsgID(host, run string, seq uint64) string {
	return Token(host) + "-" + run + "-" + strconv.FormatUint(seq, 10)
}

// HostFromSubject returns the host token of a telemetry subject, or "".
func HostFromSubject(subject string) string {
	if !strings.HasPrefix(subject, TelemetryPrefix) {
		return ""
	}
	return subject[len(TelemetryPrefix):]
}
