package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A managed cluster needs ip (iproute2) and nft (nftables) only when it can
// use network namespaces, that is as root: deps.sh installs them then, in
// both modes, and never asks a non-root user for them.
func TestDepsClusterTools(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	run := func(uid string, have ...string) (int, string, string) {
		log := filepath.Join(t.TempDir(), "apt.log")
		cmds := map[string]string{
			"id":      "echo " + uid,
			"apt-get": `echo "$@" >> ` + log,
		}
		for _, h := range have {
			cmds[h] = "exit 0"
		}
		cmd := exec.Command(bash, "deps.sh", "run")
		cmd.Env = []string{"PATH=" + fakeBin(t, cmds)}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		apt, _ := os.ReadFile(log)
		return code, string(out), string(apt)
	}
	if code, out, apt := run("0", "rabbitmq-server", "ip"); code != 0 || !strings.Contains(apt, "install") || !strings.Contains(apt, "nftables") || strings.Contains(apt, "iproute2") {
		t.Errorf("root without nft: exit %d, apt-get %q, output %s", code, apt, out)
	}
	if code, out, apt := run("0", "rabbitmq-server", "nft"); code != 0 || !strings.Contains(apt, "iproute2") || strings.Contains(apt, "nftables") {
		t.Errorf("root without ip: exit %d, apt-get %q, output %s", code, apt, out)
	}
	if code, out, apt := run("0", "rabbitmq-server", "ip", "nft"); code != 0 || apt != "" {
		t.Errorf("root with everything: exit %d, apt-get %q, output %s", code, apt, out)
	}
	if code, out, apt := run("1000", "rabbitmq-server"); code != 0 || apt != "" || strings.Contains(out, "nftables") {
		t.Errorf("non-root without ip and nft: exit %d, apt-get %q, output %s", code, apt, out)
	}
}
