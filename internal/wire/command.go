package wire

import "time"

// Command is what the controller asks the agent on one host to do, sent
// as the signed payload of an Envelope on vigil.cmd.<host>. It names an
// action the agent's own config allows and carries only that action's
// declared parameters: never a command line.
type Command struct {
	// ID is the idempotency key: an agent runs one ID at most once and
	// answers a repeat with the outcome it already has.
	ID     string            `json:"id"`
	Host   string            `json:"host"`
	Action string            `json:"action"`
	Params map[string]string `json:"params,omitempty"`
	// Epoch is the fencing epoch of the service the command acts for (0
	// when none); an agent refuses a command older than the newest epoch
	// it has seen for that service.
	Service string `json:"service,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	// Lease names the leader lease of the controller that sent the
	// command ("<bucket>/<key>"; empty when it runs without one) and
	// LeaderEpoch is that controller's term in it: an agent refuses a
	// command whose LeaderEpoch is older than the newest it has seen for
	// the same lease, so a deposed leader that has not noticed yet cannot
	// act after its successor has.
	Lease       string    `json:"lease,omitempty"`
	LeaderEpoch uint64    `json:"leader_epoch,omitempty"`
	Nonce       string    `json:"nonce"`
	Issued      time.Time `json:"issued"`
	Expires     time.Time `json:"expires"`
}

// Reply states of a command.
const (
	ReplyAccepted = "accepted"
	ReplyProgress = "progress"
	ReplyDone     = "done"
	ReplyFailed   = "failed"
	ReplyRejected = "rejected"
)

// Reply is the agent's answer to a command: the request's reply, and the
// progress messages it publishes on vigil.cmd.progress.<host>.<id-token>.
type Reply struct {
	ID       string            `json:"id"`
	Host     string            `json:"host"`
	State    string            `json:"state"`
	Progress float64           `json:"progress,omitempty"` // 0..1
	Message  string            `json:"message,omitempty"`
	Result   map[string]string `json:"result,omitempty"`
	Error    string            `json:"error,omitempty"`
	Time     time.Time         `json:"time"`
}
