package controller_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// testProgram is what the test binary does when it is started as an exec
// action's program with VIGIL_TEST_PROG set (see TestMain). args[0] is the
// mode; it returns the exit code.
//
//	exit <code> <stdout> <stderr>     write both texts, exit with code
//	out <n>                           write n bytes of 'x' to stdout
//	env                               print the sorted VIGIL_* environment
//	envlog <file>                     append the sorted VIGIL_* environment
//	                                  as one line to file
//	log <file>                        append "<key> <host> <rule>" to file
//	tree <pidfile>                    start a child (mode sleep), write
//	                                  "<own pid> <child pid>" to pidfile, sleep
//	sleep                             sleep for a minute
//	slow <file> <name> <want> <wait>  append "start <name> <unix ns>", wait
//	                                  until the file holds <want> start lines
//	                                  or <wait> passed, append "end ..."
func testProgram(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "testProgram: no mode")
		return 2
	}
	switch mode, a := args[0], args[1:]; mode {
	case "exit":
		code, _ := strconv.Atoi(a[0])
		fmt.Fprint(os.Stdout, a[1])
		fmt.Fprint(os.Stderr, a[2])
		return code
	case "out":
		n, _ := strconv.Atoi(a[0])
		_, _ = os.Stdout.Write(bytes.Repeat([]byte{'x'}, n))
		return 0
	case "env":
		var vs []string
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "VIGIL_") && !strings.HasPrefix(kv, "VIGIL_TEST_") {
				vs = append(vs, kv)
			}
		}
		sort.Strings(vs)
		fmt.Println(strings.Join(vs, "\n"))
		return 0
	case "envlog": // failover_drain_test.go: append the sorted VIGIL_* environment as one line
		var vs []string
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "VIGIL_") && !strings.HasPrefix(kv, "VIGIL_TEST_") {
				vs = append(vs, kv)
			}
		}
		sort.Strings(vs)
		return appendLine(a[0], strings.Join(vs, " "))
	case "log":
		return appendLine(a[0], fmt.Sprintf("%s %s %s", os.Getenv("VIGIL_KEY"), os.Getenv("VIGIL_HOST"), os.Getenv("VIGIL_RULE")))
	case "tree":
		return progTree(a[0])
	case "sleep":
		time.Sleep(time.Minute)
		return 0
	case "slow":
		return progSlow(a)
	case "serve", "spawn", "ready": // failover_test.go
		return failoverProg(mode, a)
	}
	fmt.Fprintln(os.Stderr, "testProgram: unknown mode", args[0])
	return 2
}

func appendLine(path, line string) int {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 0
}

func progTree(pidfile string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	child := exec.Command(self, "sleep") // same process group as this one
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	tmp := pidfile + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", os.Getpid(), child.Process.Pid), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if err := os.Rename(tmp, pidfile); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Println("tree started")
	time.Sleep(time.Minute)
	return 0
}

func progSlow(a []string) int {
	file, name := a[0], a[1]
	want, _ := strconv.Atoi(a[2])
	wait, _ := time.ParseDuration(a[3])
	if c := appendLine(file, fmt.Sprintf("start %s %d", name, time.Now().UnixNano())); c != 0 {
		return c
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(file)
		if bytes.Count(data, []byte("start ")) >= want {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return appendLine(file, fmt.Sprintf("end %s %d", name, time.Now().UnixNano()))
}
