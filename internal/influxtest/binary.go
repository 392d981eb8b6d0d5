package influxtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// EnvBinDir overrides the directory holding influxd (default
// <repo root>/.bin); scripts/install-influxd.sh honours it too.
const EnvBinDir = "VIGIL_BIN_DIR"

// RepoRoot walks up from the working directory to the directory holding
// go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of influxd, running scripts/install-influxd.sh
// first when it is missing (about 90 s the first time; the script locks
// against concurrent installs).
func Binary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := os.Getenv(EnvBinDir)
	if dir == "" {
		dir = filepath.Join(root, ".bin")
	}
	bin := filepath.Join(dir, "influxd")
	if isExecutable(bin) {
		return bin, nil
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "install-influxd.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("install influxd: %w", err)
	}
	if !isExecutable(bin) {
		return "", fmt.Errorf("install influxd: %s still missing", bin)
	}
	return bin, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
