package scenarios

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesStayLight keeps the seams of docs/architecture.md: reading a
// scenario pulls in no browser, proxy or container library; the report does
// not reach back into chaos/; gate expressions and the fault vocabulary import
// nothing of bench.
func TestDependenciesStayLight(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	deps := func(pkg string) string {
		out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return string(out)
	}
	const mod = "github.com/benchmq/bench/"
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		{mod + "scenarios", []string{"chromedp", "toxiproxy", "testcontainers"}},
		{mod + "report", []string{"chromedp", mod + "chaos/"}},
		{mod + "report/gate", []string{mod + "report\n"}},
		{mod + "chaos/fault", []string{mod + "report", mod + "scenarios", mod + "worker", mod + "internal", mod + "chaos/proxy"}},
		{mod + "chaos/timeline", []string{mod + "report"}},
	} {
		got := deps(c.pkg)
		for _, f := range c.forbidden {
			if strings.Contains(got, f) {
				t.Errorf("%s depends on %s", c.pkg, strings.TrimSpace(f))
			}
		}
	}
}
